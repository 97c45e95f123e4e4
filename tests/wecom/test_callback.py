"""``/wecom/callback``: Tencent's own WXBizMsgCrypt sample end to end, and every refusal.

The sample values are Tencent's published WeCom callback sample, verified against
``sbzhu/weworkapi_php`` ``callback/Sample.php`` (commit 0855251597a9879090766fae9d475e2ef91f28bd;
the WeCom team's PHP library, abelzhu@tencent.com) and ``workweixin/weworkapi_cplusplus``
``Sample.cpp`` (commit 4d85aeb0359480ab407846919a549c85c804816a): token ``QDG6eK``, corp id
``wx5823bf96d3bd56c7``, EncodingAESKey ``jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C``, the URL
verification (echostr decrypting to ``1616140317555161061``) and the POST whose plaintext
Sample.php quotes (a text message "hello" from ``mycreate``). The ciphertext of the POST is the
full one of those files: it ends ``...NelZpS+/uh9Ks...qN+E7Q==``; a copy cut after ``NelZpS`` does
not match the signature ``477715d1...``.

The sample's timestamps are from 2014, so those tests run with ``wecom_max_skew=0`` (the check
off); one test shows that with the default skew the same request is refused.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
import redis.asyncio as redis_asyncio

from miniapp_api.settings import Settings
from tests.conftest import LiveServer, serve_app
from wechat.simulator.callbacks import SignedCallback, sign_and_encrypt
from wechat.simulator.state import CallbackTarget
from wecom import callback, events

SAMPLE_TOKEN = "QDG6eK"
SAMPLE_CORP_ID = "wx5823bf96d3bd56c7"
SAMPLE_AES_KEY = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"

SAMPLE_VERIFY = {
    "msg_signature": "5c45ff5e21c57e6ad56bac8758b79b1d9ac89fd3",
    "timestamp": "1409659589",
    "nonce": "263014780",
    "echostr": (
        "P9nAzCzyDtyTWESHep1vC5X9xho/qYX3Zpb4yKa9SKld1DsH3Iyt3tP3zNdtp+4RPcs8TgAE7OaBO+FZXvnaqQ=="
    ),
}
SAMPLE_ECHO = "1616140317555161061"

SAMPLE_POST = {
    "msg_signature": "477715d11cdb4164915debcba66cb864d751f3e6",
    "timestamp": "1409659813",
    "nonce": "1372623149",
}
SAMPLE_ENCRYPT = (
    "RypEvHKD8QQKFhvQ6QleEB4J58tiPdvo+rtK1I9qca6aM/wvqnLSV5zEPeusUiX5L5X/0lWfrf0QADHHhGd3QczcdCUpj9"
    "11L3vg3W/sYYvuJTs3TUUkSUXxaccAS0qhxchrRYt66wiSpGLYL42aM6A8dTT+6k4aSknmPj48kzJs8qLjvd4Xgpue06DO"
    "dnLxAUHzM6+kDZ+HMZfJYuR+LtwGc2hgf5gsijff0ekUNXZiqATP7PF5mZxZ3Izoun1s4zG4LUMnvw2r+KqCKIw+3IQH03"
    "v+BCA9nMELNqbSf6tiWSrXJB3LAVGUcallcrw8V2t9EL4EhzJWrQUax5wLVMNS0+rUPA3k22Ncx4XXZS9o0MBH27Bo6Bp"
    "NelZpS+/uh9KsNlY6bHCmJU9p8g7m3fVKn28H3KDYA5Pl/T8Z1ptDAVe0lXdQ2YoyyH2uyPIGHBZZIs2pDBS8R07+qN+E"
    "7Q=="
)
SAMPLE_BODY = (
    "<xml><ToUserName><![CDATA[wx5823bf96d3bd56c7]]></ToUserName>"
    f"<Encrypt><![CDATA[{SAMPLE_ENCRYPT}]]></Encrypt>"
    "<AgentID><![CDATA[218]]></AgentID></xml>"
)

BILLION_LAUGHS = (
    '<?xml version="1.0"?>\n<!DOCTYPE lolz [\n <!ENTITY lol "lol">\n'
    + "".join(
        f' <!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">\n'
        for i in range(1, 10)
    )
    + "]>\n<xml><MsgType>event</MsgType><Event>&lol9;</Event></xml>"
)

# ----------------------------------------------------------------------------- helpers


def attach_callback(app: Any) -> None:
    # Until miniapp_api/app.py attaches it itself; a blueprint goes on an app only once.
    if callback.bp.name not in app.blueprints:
        app.blueprint(callback.bp)


@asynccontextmanager
async def callback_server(
    settings: Settings, prepare: Callable[[Any], None] | None = None
) -> AsyncIterator[LiveServer]:
    def both(app: Any) -> None:
        attach_callback(app)
        if prepare is not None:
            prepare(app)

    async with serve_app(settings, prepare=both) as server:
        yield server


def signed(settings: Settings, plaintext: str) -> SignedCallback:
    """What WeCom sends an app with these settings for ``plaintext`` (fresh timestamp, random
    nonce), made by the simulator's own signer."""
    target = CallbackTarget(url="", token=settings.wecom_token, aes_key=settings.wecom_aes_key)
    return sign_and_encrypt(
        target,
        corp_id=settings.wecom_corp_id,
        agent_id=settings.wecom_agent_id,
        plaintext=plaintext,
    )


async def post(server: LiveServer, message: SignedCallback) -> httpx.Response:
    return await server.http.post(
        "/wecom/callback",
        params=message.params,
        content=message.body.encode(),
        headers={"Content-Type": "text/xml"},
    )


def sample_settings(settings: Settings, max_skew: int = 0) -> Settings:
    return dataclasses.replace(
        settings,
        wecom_token=SAMPLE_TOKEN,
        wecom_aes_key=SAMPLE_AES_KEY,
        wecom_corp_id=SAMPLE_CORP_ID,
        wecom_max_skew=max_skew,
    )


def error_code(response: httpx.Response) -> str:
    code: str = response.json()["error"]["code"]
    return code


TEXT_EVENT = (
    "<xml><ToUserName><![CDATA[ww-sim-corp]]></ToUserName><FromUserName><![CDATA[zhangsan]]>"
    "</FromUserName><CreateTime>1700000000</CreateTime><MsgType><![CDATA[event]]></MsgType>"
    "<Event><![CDATA[click]]></Event><EventKey><![CDATA[menu-1]]></EventKey>"
    "<AgentID>1000002</AgentID></xml>"
)


@pytest.fixture
async def live_callback(
    settings: Settings, redis_client: redis_asyncio.Redis
) -> AsyncIterator[LiveServer]:
    # redis_client: on the postgres backend the app's Redis is the real one, flushed around us.
    async with callback_server(settings) as server:
        yield server


# ----------------------------------------------------------------------------- the official sample


async def test_the_official_url_verification_sample_answers_the_echostr(
    settings: Settings, redis_client: redis_asyncio.Redis
) -> None:
    async with callback_server(sample_settings(settings)) as server:
        response = await server.http.get("/wecom/callback", params=SAMPLE_VERIFY)
    assert response.status_code == 200, response.text
    assert response.text == SAMPLE_ECHO
    assert response.headers["content-type"].startswith("text/plain")


async def test_the_official_message_sample_decrypts_and_is_acknowledged(
    settings: Settings, redis_client: redis_asyncio.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="suban.wecom.events")
    async with callback_server(sample_settings(settings)) as server:
        response = await server.http.post(
            "/wecom/callback", params=SAMPLE_POST, content=SAMPLE_BODY.encode()
        )
    assert response.status_code == 200, response.text
    assert response.text == "success"
    # Decrypted to Sample.php's text message: no handler, so logged by type only.
    logged = [r.getMessage() for r in caplog.records if r.name == "suban.wecom.events"]
    assert any("MsgType=text" in line for line in logged), logged
    assert not any("hello" in line or "mycreate" in line for line in logged)


async def test_with_the_default_skew_the_old_sample_is_refused(
    settings: Settings, redis_client: redis_asyncio.Redis
) -> None:
    assert Settings().wecom_max_skew == 300
    async with callback_server(sample_settings(settings, max_skew=300)) as server:
        verify = await server.http.get("/wecom/callback", params=SAMPLE_VERIFY)
        message = await server.http.post(
            "/wecom/callback", params=SAMPLE_POST, content=SAMPLE_BODY.encode()
        )
    assert (verify.status_code, error_code(verify)) == (401, "STALE_TIMESTAMP")
    assert (message.status_code, error_code(message)) == (401, "STALE_TIMESTAMP")


async def test_a_tampered_sample_signature_is_refused(
    settings: Settings, redis_client: redis_asyncio.Redis
) -> None:
    flipped = SAMPLE_VERIFY["msg_signature"][:-1] + "4"
    async with callback_server(sample_settings(settings)) as server:
        verify = await server.http.get(
            "/wecom/callback", params=SAMPLE_VERIFY | {"msg_signature": flipped}
        )
        # The ciphertext changed by one character, the signature kept.
        body = SAMPLE_BODY.replace("RypEvHKD8", "RypEvHKD9")
        message = await server.http.post(
            "/wecom/callback", params=SAMPLE_POST, content=body.encode()
        )
        # Another nonce under the right signature.
        renonced = await server.http.post(
            "/wecom/callback",
            params=SAMPLE_POST | {"nonce": "1372623150"},
            content=SAMPLE_BODY.encode(),
        )
    for response in (verify, message, renonced):
        assert (response.status_code, error_code(response)) == (401, "INVALID_SIGNATURE")


# ----------------------------------------------------------------------------- our own pushes


async def test_a_fresh_push_is_accepted_and_its_replay_refused(live_callback: LiveServer) -> None:
    message = signed(live_callback.app.ctx.settings, TEXT_EVENT)
    first = await post(live_callback, message)
    again = await post(live_callback, message)
    assert (first.status_code, first.text) == (200, "success")
    assert (again.status_code, error_code(again)) == (401, "REPLAYED_NONCE")


async def test_a_stale_timestamp_is_refused_even_when_correctly_signed(
    live_callback: LiveServer,
) -> None:
    settings = live_callback.app.ctx.settings
    message = signed(settings, TEXT_EVENT)
    stale = str(int(time.time()) - settings.wecom_max_skew - 60)
    ciphertext = message.body.split("<Encrypt><![CDATA[")[1].split("]]>")[0]
    params = message.params | {
        "timestamp": stale,
        "msg_signature": callback.signature_of(
            settings.wecom_token, stale, message.params["nonce"], ciphertext
        ),
    }
    response = await post(live_callback, SignedCallback(params=params, body=message.body))
    assert (response.status_code, error_code(response)) == (401, "STALE_TIMESTAMP")


async def test_unknown_events_are_acknowledged_and_logged_by_type_only(
    live_callback: LiveServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="suban.wecom.events")
    response = await post(live_callback, signed(live_callback.app.ctx.settings, TEXT_EVENT))
    assert (response.status_code, response.text) == (200, "success")
    logged = [r.getMessage() for r in caplog.records if r.name == "suban.wecom.events"]
    assert any("MsgType=event Event=click" in line for line in logged), logged
    assert not any("zhangsan" in line or "menu-1" in line for line in logged)


async def test_a_message_for_another_corp_is_refused(live_callback: LiveServer) -> None:
    settings = live_callback.app.ctx.settings
    other = dataclasses.replace(settings, wecom_corp_id="ww-other-corp")
    response = await post(live_callback, signed(other, TEXT_EVENT))
    assert (response.status_code, error_code(response)) == (400, "BAD_REQUEST")


async def test_a_failing_handler_gives_the_nonce_back_for_the_retry(
    settings: Settings, redis_client: redis_asyncio.Redis
) -> None:
    calls: list[str] = []

    async def flaky(app: Any, change: Any) -> None:
        calls.append(change.sp_no)
        if len(calls) == 1:
            raise RuntimeError("database went away")

    from tests.wecom.test_approval_events import SINGLE_RECORD

    def prepare(app: Any) -> None:
        events.set_approval_handler(app, flaky)

    async with callback_server(settings, prepare) as server:
        message = signed(settings, SINGLE_RECORD)
        first = await post(server, message)
        retry = await post(server, message)
        third = await post(server, message)
    assert first.status_code == 500
    assert (retry.status_code, retry.text) == (200, "success")
    assert (third.status_code, error_code(third)) == (401, "REPLAYED_NONCE")
    assert calls == ["202601010001", "202601010001"]


# ----------------------------------------------------------------------------- hostile input


async def test_an_entity_bomb_in_the_envelope_is_refused_unexpanded(
    live_callback: LiveServer,
) -> None:
    params = signed(live_callback.app.ctx.settings, TEXT_EVENT).params
    started = time.monotonic()
    response = await live_callback.http.post(
        "/wecom/callback", params=params, content=BILLION_LAUGHS.encode()
    )
    assert (response.status_code, error_code(response)) == (400, "BAD_REQUEST")
    assert "DTD" in response.json()["error"]["message"]
    assert time.monotonic() - started < 2


async def test_an_entity_bomb_inside_the_encrypted_payload_is_refused(
    live_callback: LiveServer,
) -> None:
    response = await post(live_callback, signed(live_callback.app.ctx.settings, BILLION_LAUGHS))
    assert (response.status_code, error_code(response)) == (400, "BAD_REQUEST")
    assert "DTD" in response.json()["error"]["message"]


@pytest.mark.parametrize(
    "plaintext",
    [
        # An external entity, without any DOCTYPE keyword spelled in upper case.
        '<!doctype x [<!entity e SYSTEM "file:///etc/passwd">]><xml>&e;</xml>',
        # A reference to an entity nobody declared: expat must refuse, not pass it through.
        "<xml><MsgType>event</MsgType><Event>&lol9;</Event></xml>",
        "not xml at all",
        "<xml><MsgType>event</MsgType>",
    ],
)
async def test_hostile_or_broken_decrypted_xml_is_refused(
    live_callback: LiveServer, plaintext: str
) -> None:
    response = await post(live_callback, signed(live_callback.app.ctx.settings, plaintext))
    assert (response.status_code, error_code(response)) == (400, "BAD_REQUEST")


async def test_a_utf16_envelope_cannot_smuggle_a_doctype(live_callback: LiveServer) -> None:
    params = signed(live_callback.app.ctx.settings, TEXT_EVENT).params
    response = await live_callback.http.post(
        "/wecom/callback", params=params, content=BILLION_LAUGHS.encode("utf-16")
    )
    assert (response.status_code, error_code(response)) == (400, "BAD_REQUEST")


async def test_not_xml_is_400(live_callback: LiveServer) -> None:
    params = signed(live_callback.app.ctx.settings, TEXT_EVENT).params
    for body in (b'{"json": true}', b"", b"<xml><Encrypt></Encrypt></xml>", b"<xml>"):
        response = await live_callback.http.post("/wecom/callback", params=params, content=body)
        assert (response.status_code, error_code(response)) == (400, "BAD_REQUEST"), body


async def test_an_oversize_body_is_413(live_callback: LiveServer) -> None:
    params = signed(live_callback.app.ctx.settings, TEXT_EVENT).params
    big = b"<xml>" + b" " * (callback.MAX_BODY + 1) + b"</xml>"
    declared = await live_callback.http.post("/wecom/callback", params=params, content=big)
    assert (declared.status_code, error_code(declared)) == (413, "PAYLOAD_TOO_LARGE")

    async def chunks() -> AsyncIterator[bytes]:
        # No Content-Length: the stream itself must be cut off.
        for _ in range(20):
            yield b" " * 8192

    streamed = await live_callback.http.post("/wecom/callback", params=params, content=chunks())
    assert (streamed.status_code, error_code(streamed)) == (413, "PAYLOAD_TOO_LARGE")


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"timestamp": "1", "nonce": "n"},
        {"msg_signature": "x" * 40, "timestamp": "1", "nonce": "n"},
        {"msg_signature": "a" * 40, "timestamp": "soon", "nonce": "n"},
        {"msg_signature": "a" * 40, "timestamp": "1", "nonce": "n n"},
    ],
)
async def test_a_malformed_query_is_400(live_callback: LiveServer, params: dict[str, str]) -> None:
    response = await live_callback.http.post(
        "/wecom/callback", params=params, content=b"<xml><Encrypt>x</Encrypt></xml>"
    )
    assert (response.status_code, error_code(response)) == (400, "BAD_REQUEST")
    verify = await live_callback.http.get("/wecom/callback", params=params | {"echostr": "x"})
    assert (verify.status_code, error_code(verify)) == (400, "BAD_REQUEST")
