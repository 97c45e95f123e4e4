"""Push an event to the app's WeCom callback the way WeCom does: the plaintext XML encrypted with
the app's EncodingAESKey, wrapped in ``<xml><ToUserName/><Encrypt/><AgentID/></xml>`` and signed
in the query string (``msg_signature``, ``timestamp``, ``nonce``)."""

from __future__ import annotations

import re
import secrets
import time
from dataclasses import dataclass

import httpx
from wechatpy.enterprise.crypto import WeChatCrypto

from wechat.simulator.state import CallbackTarget

_ENCRYPT = re.compile(r"<Encrypt><!\[CDATA\[(.*?)\]\]></Encrypt>", re.S)
_SIGNATURE = re.compile(r"<MsgSignature><!\[CDATA\[(.*?)\]\]></MsgSignature>", re.S)


@dataclass(frozen=True)
class Delivery:
    status: int | None
    body: str
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.status == 200


@dataclass(frozen=True)
class SignedCallback:
    params: dict[str, str]
    body: str


def sign_and_encrypt(
    target: CallbackTarget, *, corp_id: str, agent_id: int, plaintext: str
) -> SignedCallback:
    crypto = WeChatCrypto(target.token, target.aes_key, corp_id)
    nonce = secrets.token_hex(8)
    timestamp = str(int(time.time()))
    # wechatpy renders the passive-reply envelope; WeCom's push envelope differs, so the
    # ciphertext and signature are taken out of it and re-wrapped.
    envelope = str(crypto.encrypt_message(plaintext, nonce, timestamp))
    encrypt = _ENCRYPT.search(envelope)
    signature = _SIGNATURE.search(envelope)
    if encrypt is None or signature is None:
        raise RuntimeError("unexpected wechatpy envelope")
    body = (
        f"<xml><ToUserName><![CDATA[{corp_id}]]></ToUserName>"
        f"<Encrypt><![CDATA[{encrypt.group(1)}]]></Encrypt>"
        f"<AgentID><![CDATA[{agent_id}]]></AgentID></xml>"
    )
    params = {"msg_signature": signature.group(1), "timestamp": timestamp, "nonce": nonce}
    return SignedCallback(params=params, body=body)


async def deliver(
    target: CallbackTarget, *, corp_id: str, agent_id: int, plaintext: str, timeout: float = 5.0
) -> Delivery:
    signed = sign_and_encrypt(target, corp_id=corp_id, agent_id=agent_id, plaintext=plaintext)
    try:
        async with httpx.AsyncClient(timeout=timeout, trust_env=False) as client:
            response = await client.post(
                target.url,
                params=signed.params,
                content=signed.body.encode(),
                headers={"Content-Type": "text/xml; charset=utf-8"},
            )
    except httpx.HTTPError as exc:
        return Delivery(status=None, body="", error=f"{type(exc).__name__}: {exc}")
    return Delivery(status=response.status_code, body=response.text[:2000])
