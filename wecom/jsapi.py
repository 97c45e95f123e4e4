"""JS-SDK parameters for our H5 pages opened inside WeCom: ``wx.config`` signed with the corp's
jsapi_ticket, ``wx.agentConfig`` with the app's ticket.

Signature: SHA-1 of ``jsapi_ticket=…&noncestr=…&timestamp=…&url=…`` (wechatpy's signer, which
sorts the four fields into that order), where ``url`` is the page's URL without its ``#fragment``,
exactly as the page sees it: re-encoding it would sign a different string. Only pages under the
service's public URL are signed, so the tickets cannot be used to vouch for someone else's page.

A page whose ``wx.config`` fails with "invalid signature" after the tickets changed at WeCom asks
again with ``refresh``: the cached tickets are dropped, at most once per ``REFRESH_INTERVAL``
across workers, since anyone can ask and WeCom allows only about a hundred ticket fetches an hour.
"""

from __future__ import annotations

import secrets
import string
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlsplit

from wechatpy.enterprise.client.api.jsapi import WeChatJSAPI

from wechat.wecom import JsapiTicketKind

MAX_URL_LENGTH = 2048
REFRESH_INTERVAL = 60
REFRESH_KEY = "suban:wecom:jsapi-refresh"
NONCE_ALPHABET = string.ascii_letters + string.digits
NONCE_LENGTH = 16

# Its signer is a pure function of its arguments; no wechatpy client (sync, requests) is involved.
_SIGNER = WeChatJSAPI()


class UnsignableUrl(ValueError):
    """The URL is not an absolute http(s) URL of a page under the public URL."""


class TicketSource(Protocol):
    """What signing needs of the WeCom client (:class:`wechat.wecom.WeComClient`)."""

    corp_id: str
    agent_id: int

    async def jsapi_ticket(self, kind: JsapiTicketKind) -> str: ...

    async def drop_jsapi_ticket(self, kind: JsapiTicketKind, ticket: str) -> bool: ...


@dataclass(frozen=True)
class JsapiConfig:
    config: dict[str, Any]
    agent_config: dict[str, Any]

    def as_json(self) -> dict[str, Any]:
        return {"config": self.config, "agent_config": self.agent_config}


def page_url(url: str, public_base: str) -> str:
    """The string to sign for ``url``: ``url`` without its fragment. Raises
    :class:`UnsignableUrl` unless it is an absolute http(s) URL on the host, port and scheme of
    ``public_base`` and under its path, with no credentials or control characters in it."""
    if not url or len(url) > MAX_URL_LENGTH:
        raise UnsignableUrl(url)
    if any(ord(ch) <= 0x20 or ord(ch) == 0x7F for ch in url) or "\\" in url:
        raise UnsignableUrl(url)
    signed = url.split("#", 1)[0]
    try:
        parts = urlsplit(signed)
        base = urlsplit(public_base)
        port, base_port = parts.port, base.port
    except ValueError as exc:
        raise UnsignableUrl(url) from exc
    if parts.scheme not in ("http", "https") or parts.scheme != base.scheme:
        raise UnsignableUrl(url)
    if parts.username is not None or parts.password is not None or not parts.hostname:
        raise UnsignableUrl(url)
    if parts.hostname != base.hostname or port != base_port:
        raise UnsignableUrl(url)
    prefix = base.path.rstrip("/")
    path = parts.path or "/"
    if prefix and path != prefix and not path.startswith(f"{prefix}/"):
        raise UnsignableUrl(url)
    return signed


def signature(ticket: str, nonce: str, timestamp: int, url: str) -> str:
    return str(_SIGNER.get_jsapi_signature(nonce, ticket, timestamp, url))


def new_nonce() -> str:
    # Letters and digits only: WeCom's JS-SDK documents nonceStr as a plain random string.
    return "".join(secrets.choice(NONCE_ALPHABET) for _ in range(NONCE_LENGTH))


async def refresh_tickets(redis: Any, wecom: TicketSource) -> bool:
    """Drop the cached tickets so the next signing fetches fresh ones, unless another caller
    did so within ``REFRESH_INTERVAL`` seconds; True if they were dropped."""
    if not await redis.set(REFRESH_KEY, "1", nx=True, ex=REFRESH_INTERVAL):
        return False
    kinds: tuple[JsapiTicketKind, ...] = ("corp", "agent")
    for kind in kinds:
        await wecom.drop_jsapi_ticket(kind, await wecom.jsapi_ticket(kind))
    return True


async def jsapi_config(wecom: TicketSource, url: str, *, now: float) -> JsapiConfig:
    """``wx.config`` and ``wx.agentConfig`` parameters for the page at ``url`` (already checked
    by :func:`page_url`), each with its own nonce."""
    timestamp = int(now)
    corp_ticket = await wecom.jsapi_ticket("corp")
    agent_ticket = await wecom.jsapi_ticket("agent")
    config_nonce, agent_nonce = new_nonce(), new_nonce()
    return JsapiConfig(
        config={
            "beta": True,
            "appId": wecom.corp_id,
            "timestamp": timestamp,
            "nonceStr": config_nonce,
            "signature": signature(corp_ticket, config_nonce, timestamp, url),
        },
        agent_config={
            "corpid": wecom.corp_id,
            "agentid": str(wecom.agent_id),
            "timestamp": timestamp,
            "nonceStr": agent_nonce,
            "signature": signature(agent_ticket, agent_nonce, timestamp, url),
        },
    )
