"""``/wecom/callback``: WeCom's URL verification (GET) and encrypted event pushes (POST).

Every request is checked in this order, cheapest and least trusting first:

1. the query is well-formed (``msg_signature``, ``timestamp``, ``nonce``; ``echostr`` on GET), and a
   POST body is at most ``MAX_BODY`` bytes (read as a stream, so a large body is cut off rather
   than buffered) → 400 / 413;
2. the envelope XML has no DTD or entity declaration and is well-formed → 400, never expanded;
3. ``msg_signature`` = sha1 of the sorted concatenation of token, timestamp, nonce and the
   ciphertext, compared in constant time → 401. wechatpy's own check compares with ``!=`` and
   looks at no timestamp, so it only runs after ours, inside the decryption;
4. the timestamp is within ``Settings.wecom_max_skew`` seconds of now (0 turns this off) → 401;
5. the nonce has not been seen: ``SET NX`` in Redis, kept twice the skew window (a day when the
   skew check is off), so every worker refuses a replay → 401;
6. wechatpy's WeCom ``WeChatCrypto`` decrypts (AES-CBC, receiver id = our corp id) → 400;
7. the decrypted XML passes the same declaration refusal and parse → 400, and is dispatched by
   (MsgType, Event) through ``wecom.events``; unknown types are acknowledged with ``success``.

A handler that fails gives the nonce back before the 500, so WeCom's retry of the same request is
processed rather than refused as a replay; handlers are idempotent (the same event twice changes
nothing).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import time
from typing import Any

from sanic import Blueprint, HTTPResponse, Request
from sanic.response import json, text
from wechatpy.enterprise.crypto import WeChatCrypto

from wecom import (
    approval_events,  # noqa: F401 - imported for its sys_approval_change registration
    events,
    xml_safety,
)

log = logging.getLogger("suban.wecom.callback")

bp = Blueprint("wecom_callback", url_prefix="/wecom")

# WeCom's largest pushes (approval changes with many nodes and comments) are a few KB.
MAX_BODY = 64 * 1024
NONCE_PREFIX = "suban:wecom:nonce"
# Nonces are remembered this long when the skew check is off (it can then not bound the window).
NONCE_TTL_WITHOUT_SKEW = 86_400

_SIGNATURE = re.compile(r"^[0-9a-fA-F]{40}$")
_TIMESTAMP = re.compile(r"^[0-9]{1,12}$")
_NONCE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
# Base64 of the ciphertext; bounded by MAX_BODY for POSTs, by this for echostr.
_ECHOSTR_MAX = 4096


class CallbackRefused(Exception):
    """A refused callback, answered in the contract's error shape by this blueprint's own
    handler (wecom sits below miniapp_api and does not import its errors)."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{status} {code}")
        self.status = status
        self.code = code
        self.message = message


class Refused(CallbackRefused):
    """401 for a request that does not prove it comes from WeCom (no Bearer challenge: WeCom
    signs, it does not log in)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(401, code, message)


@bp.exception(CallbackRefused)  # type: ignore[untyped-decorator]  # sanic leaves it untyped
async def refused(request: Request, exc: CallbackRefused) -> HTTPResponse:
    return json({"error": {"code": exc.code, "message": exc.message}}, status=exc.status)


def _bad(message: str = "回调请求格式有误") -> CallbackRefused:
    return CallbackRefused(400, "BAD_REQUEST", message)


def _too_large() -> CallbackRefused:
    return CallbackRefused(413, "PAYLOAD_TOO_LARGE", "回调内容过大")


def signature_of(token: str, timestamp: str, nonce: str, encrypt: str) -> str:
    """WeCom's msg_signature: sha1 over the four values sorted as strings and concatenated."""
    return hashlib.sha1("".join(sorted((token, timestamp, nonce, encrypt))).encode()).hexdigest()  # noqa: S324 - WeCom's algorithm


def _query(request: Request, *names: str) -> dict[str, str]:
    values: dict[str, str] = {}
    for name in names:
        value = request.args.get(name)
        if not isinstance(value, str) or not value:
            raise _bad(f"缺少参数 {name}")
        values[name] = value
    if not _SIGNATURE.match(values["msg_signature"]):
        raise _bad("msg_signature 格式有误")
    if not _TIMESTAMP.match(values["timestamp"]):
        raise _bad("timestamp 格式有误")
    if not _NONCE.match(values["nonce"]):
        raise _bad("nonce 格式有误")
    return values


def _settings(request: Request) -> Any:
    return request.app.ctx.settings


def _crypto(request: Request) -> WeChatCrypto:
    settings = _settings(request)
    return WeChatCrypto(settings.wecom_token, settings.wecom_aes_key, settings.wecom_corp_id)


async def _verify(request: Request, query: dict[str, str], encrypt: str) -> str:
    """Signature, timestamp, nonce (in that order). Returns the Redis key holding the nonce."""
    settings = _settings(request)
    expected = signature_of(settings.wecom_token, query["timestamp"], query["nonce"], encrypt)
    if not hmac.compare_digest(expected.encode(), query["msg_signature"].lower().encode()):
        log.info("wecom callback refused: bad signature")
        raise Refused("INVALID_SIGNATURE", "回调签名无效")
    skew: int = settings.wecom_max_skew
    if skew > 0 and abs(time.time() - int(query["timestamp"])) > skew:
        log.info("wecom callback refused: timestamp outside %s s", skew)
        raise Refused("STALE_TIMESTAMP", "回调时间戳已过期")
    key = f"{NONCE_PREFIX}:{query['nonce']}"
    ttl = 2 * skew if skew > 0 else NONCE_TTL_WITHOUT_SKEW
    if not await request.app.ctx.redis.set(key, "1", nx=True, ex=ttl):
        log.info("wecom callback refused: nonce seen before")
        raise Refused("REPLAYED_NONCE", "回调请求重复")
    return key


def _decrypt_failed(exc: Exception) -> CallbackRefused:
    # The type only: the message of a decoding error may quote the input.
    log.info("wecom callback refused: decryption failed (%s)", type(exc).__name__)
    return _bad("回调内容无法解密")


@bp.get("/callback", name="wecom_callback_verify")
async def verify_url(request: Request) -> HTTPResponse:
    """URL verification: answer the decrypted echostr as plain text."""
    query = _query(request, "msg_signature", "timestamp", "nonce", "echostr")
    echostr = query["echostr"]
    if len(echostr) > _ECHOSTR_MAX:
        raise _bad("echostr 过长")
    await _verify(request, query, echostr)
    try:
        plain = _crypto(request).check_signature(
            query["msg_signature"], query["timestamp"], query["nonce"], echostr
        )
    except Exception as exc:  # wechatpy raises many types for hostile input
        raise _decrypt_failed(exc) from exc
    return text(plain if isinstance(plain, str) else plain.decode())


async def _read_body(request: Request) -> bytes:
    """The body, refused with 413 as soon as it passes MAX_BODY (declared or actual)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY:
        raise _too_large()
    # Sanic's Stream type does not declare read(); the HTTP/1 and HTTP/3 streams both have it.
    stream: Any = request.stream
    if stream is None:  # not a streaming route: Sanic has read it already
        body = request.body
        if len(body) > MAX_BODY:
            raise _too_large()
        return body
    chunks: list[bytes] = []
    size = 0
    while (chunk := await stream.read()) is not None:
        size += len(chunk)
        if size > MAX_BODY:
            raise _too_large()
        chunks.append(chunk)
    return b"".join(chunks)


@bp.post("/callback", name="wecom_callback_event", stream=True)
async def receive_event(request: Request) -> HTTPResponse:
    """An encrypted event: verify, decrypt, dispatch, answer ``success``."""
    query = _query(request, "msg_signature", "timestamp", "nonce")
    raw = await _read_body(request)
    try:
        envelope = xml_safety.parse(raw)
    except xml_safety.UnsafeXml as exc:
        log.warning("wecom callback refused: declarations in the envelope")
        raise _bad("回调内容不得包含 DTD 或实体声明") from exc
    except xml_safety.MalformedXml as exc:
        raise _bad("回调内容不是有效的 XML") from exc
    encrypt = (envelope.findtext("Encrypt") or "").strip()
    if not encrypt:
        raise _bad("回调内容缺少 Encrypt")
    nonce_key = await _verify(request, query, encrypt)
    try:
        # A dict, so wechatpy does not parse the envelope again (with xmltodict).
        plain = _crypto(request).decrypt_message(
            {"Encrypt": encrypt}, query["msg_signature"], query["timestamp"], query["nonce"]
        )
    except Exception as exc:  # wechatpy raises many types for hostile input
        raise _decrypt_failed(exc) from exc
    try:
        message = xml_safety.parse(plain)
    except xml_safety.UnsafeXml as exc:
        log.warning("wecom callback refused: declarations in the decrypted message")
        raise _bad("回调内容不得包含 DTD 或实体声明") from exc
    except xml_safety.MalformedXml as exc:
        raise _bad("回调内容不是有效的 XML") from exc
    try:
        await events.dispatch(request.app, message)
    except events.MalformedEvent as exc:
        log.info("wecom callback refused: malformed %s event (%s)", events.key_of(message), exc)
        raise _bad("回调事件内容有误") from exc
    except Exception:
        # Give the nonce back: WeCom retries the same request, which must then be processed.
        await request.app.ctx.redis.delete(nonce_key)
        raise
    return text("success")
