"""The mini-program server APIs, answering with the real APIs' shapes and error codes.

Inputs follow API.md's simulator conventions:

* login code ``sim:<openid>`` → that openid; the unionid is derived from the openid (stable), the
  session_key is random per login; any other code → 40029.
* phone code ``sim:<11 digits>`` → that phone number (country code 86); other → 40029.
* face ``verify_result`` ``sim:<name>:<id_number>`` (optionally ``:<openid>`` appended, which the
  answer then carries as ``openid``) → ``identify_ret`` 0 with :func:`wechat.face_digest` of the
  name and ID number (lowercase hex MD5; the ID number upper-cased first); other → 84001.
* getwxacodeunlimit → a PNG of a plain QR code holding ``{page}?scene={scene, URL-encoded}``;
  a scene outside 1–32 characters → 40169.
"""

from __future__ import annotations

import base64
import hashlib
import io
import re
import secrets
from urllib.parse import quote

import segno
from sanic import Blueprint, Request
from sanic.response import HTTPResponse, json, raw

from wechat.miniprogram import face_digest
from wechat.simulator.config import SimulatorConfig
from wechat.simulator.endpoint import posted, simulated, wechat_error, wechat_ok
from wechat.simulator.state import SimulatorState

_PHONE = re.compile(r"\d{11}")


def unionid_for(openid: str) -> str:
    return "sim-union-" + hashlib.sha256(f"unionid:{openid}".encode()).hexdigest()[:24]


def miniprogram_blueprint(state: SimulatorState, config: SimulatorConfig) -> Blueprint:
    bp = Blueprint("wechat_simulator_miniprogram", url_prefix="/wechat")

    @bp.post("/cgi-bin/stable_token", name="stable_token")
    @simulated(state, "stable_token", posts_json=True)
    async def stable_token(request: Request) -> HTTPResponse:
        body = posted(request)
        if body.get("grant_type") != "client_credential":
            return wechat_error(40002, "invalid grant_type")
        if body.get("appid") != config.appid:
            return wechat_error(40013, "invalid appid")
        if body.get("secret") != config.secret:
            return wechat_error(40125, "invalid appsecret")
        token, expires_in = state.issue_token("miniprogram", config.appid, config.token_ttl)
        # Success carries no errcode, as Tencent's does.
        return json({"access_token": token, "expires_in": expires_in})

    @bp.get("/sns/jscode2session", name="jscode2session")
    @simulated(state, "jscode2session")
    async def jscode2session(request: Request) -> HTTPResponse:
        if request.args.get("appid") != config.appid:
            return wechat_error(40013, "invalid appid")
        if request.args.get("secret") != config.secret:
            return wechat_error(40125, "invalid appsecret")
        code = request.args.get("js_code") or ""
        if not code:
            return wechat_error(41008, "missing code")
        openid = code.removeprefix("sim:")
        if not code.startswith("sim:") or not openid:
            return wechat_error(40029, "invalid code")
        session_key = base64.b64encode(secrets.token_bytes(16)).decode()
        return json({"openid": openid, "session_key": session_key, "unionid": unionid_for(openid)})

    @bp.post("/wxa/business/getuserphonenumber", name="getuserphonenumber")
    @simulated(state, "getuserphonenumber", kind="miniprogram", posts_json=True)
    async def getuserphonenumber(request: Request) -> HTTPResponse:
        body = posted(request)
        code = str(body.get("code") or "")
        phone = code.removeprefix("sim:")
        if not code.startswith("sim:") or not _PHONE.fullmatch(phone):
            return wechat_error(40029, "invalid code")
        return wechat_ok(
            phone_info={
                "phoneNumber": phone,
                "purePhoneNumber": phone,
                "countryCode": "86",
                "watermark": {"timestamp": int(state.clock()), "appid": config.appid},
            }
        )

    @bp.post("/cityservice/face/identify/getinfo", name="face_getinfo")
    @simulated(state, "face_getinfo", kind="miniprogram", posts_json=True)
    async def face_getinfo(request: Request) -> HTTPResponse:
        body = posted(request)
        parts = str(body.get("verify_result") or "").split(":")
        if len(parts) not in (3, 4) or parts[0] != "sim" or not parts[1] or not parts[2]:
            return wechat_error(84001, "invalid identify id")
        name, id_number = parts[1], parts[2]
        openid = parts[3] if len(parts) == 4 else ""
        now = int(state.clock())
        return wechat_ok(
            identify_ret=0,
            identify_time=now,
            validate_data=secrets.token_hex(8),
            openid=openid,
            user_id_key=secrets.token_hex(16),
            finish_time=now,
            id_card_number_md5=face_digest(id_number, id_number=True),
            name_utf8_md5=face_digest(name),
        )

    @bp.post("/cgi-bin/message/subscribe/send", name="subscribe_send")
    @simulated(state, "subscribe_send", kind="miniprogram", posts_json=True)
    async def subscribe_send(request: Request) -> HTTPResponse:
        body = posted(request)
        if not body.get("touser"):
            return wechat_error(40003, "invalid openid")
        if not body.get("template_id"):
            return wechat_error(40037, "invalid template_id")
        data = body.get("data")
        if not isinstance(data, dict) or not all(
            isinstance(v, dict) and "value" in v for v in data.values()
        ):
            return wechat_error(47003, "argument invalid! data.value empty")
        state.messages.append({"channel": "subscribe", "body": body})
        return wechat_ok(msgid=len(state.messages))

    @bp.post("/wxa/getwxacodeunlimit", name="getwxacodeunlimit")
    @simulated(state, "getwxacodeunlimit", kind="miniprogram", posts_json=True)
    async def getwxacodeunlimit(request: Request) -> HTTPResponse:
        body = posted(request)
        scene = str(body.get("scene") or "")
        if not 1 <= len(scene) <= 32:
            return wechat_error(40169, "invalid length for scene")
        try:
            width = min(1280, max(280, int(body.get("width") or 430)))
        except (TypeError, ValueError):
            return wechat_error(47001, "data format error")
        page = body.get("page")
        if page is not None and not isinstance(page, str):
            return wechat_error(47001, "data format error")
        return raw(wxacode_png(scene, page, width), content_type="image/png")

    return bp


def wxacode_png(scene: str, page: str | None, width: int) -> bytes:
    """A PNG about ``width`` pixels square holding a plain QR code of the page and scene, as
    ``pages/guide/index?scene=g%3Dproxy_invoice``: not a WeChat mini-program code (its round
    pattern is Tencent's), but scannable, so a test can check what the code would open."""
    content = f"{page or ''}?scene={quote(scene, safe='')}"
    qr = segno.make(content, error="m", micro=False)
    modules = qr.symbol_size(scale=1, border=4)[0]
    out = io.BytesIO()
    qr.save(out, kind="png", scale=max(1, width // modules), border=4)
    return out.getvalue()
