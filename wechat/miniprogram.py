"""Async client for the WeChat mini-program server APIs we use.

Face verification digests: ``getinfo`` returns ``name_utf8_md5`` and ``id_card_number_md5`` as
hex MD5 digests, never the values themselves. We compare them as lowercase hex of the UTF-8 name
(stripped) and of the ID number stripped and upper-cased (the check character ``X`` is uppercase on
the card and in the population registry); :func:`face_digest` and
:meth:`FaceVerifyResult.matches` are the one place that rule lives, and the simulator uses them.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from wechat.token_calls import TokenCalls
from wechat.tokens import FetchedToken, TokenKey, TokenStore
from wechat.transport import Transport, optional_int, optional_str

MINIPROGRAM_API_BASE = "https://api.weixin.qq.com"


@dataclass(frozen=True)
class LoginSession:
    openid: str
    session_key: str = field(repr=False)
    unionid: str | None = None


@dataclass(frozen=True)
class PhoneNumber:
    phone_number: str = field(repr=False)
    pure_phone_number: str = field(repr=False)
    country_code: str


def face_digest(value: str, *, id_number: bool = False) -> str:
    """Lowercase hex MD5 as WeChat reports it for a face-verified name or ID number."""
    normalised = value.strip().upper() if id_number else value.strip()
    return hashlib.md5(normalised.encode("utf-8"), usedforsecurity=False).hexdigest()


@dataclass(frozen=True)
class FaceVerifyResult:
    identify_ret: int
    openid: str
    id_card_number_md5: str = field(repr=False)
    name_utf8_md5: str = field(repr=False)
    identify_time: int | None = None
    finish_time: int | None = None
    validate_data: str | None = None
    user_id_key: str | None = None

    @property
    def passed(self) -> bool:
        return self.identify_ret == 0

    def matches(self, name: str, id_number: str) -> bool:
        """Whether the verified face belongs to this name and ID number."""
        name_ok = hmac.compare_digest(self.name_utf8_md5.lower(), face_digest(name))
        id_ok = hmac.compare_digest(
            self.id_card_number_md5.lower(), face_digest(id_number, id_number=True)
        )
        return self.passed and name_ok and id_ok


class MiniProgramClient:
    def __init__(
        self,
        appid: str,
        secret: str,
        api_base: str,
        transport: Transport,
        tokens: TokenStore,
    ) -> None:
        self.appid = appid
        self._secret = secret
        self._calls = TokenCalls(
            api_base, transport, tokens, TokenKey("miniprogram", appid), self._fetch_token
        )

    def __repr__(self) -> str:
        return f"MiniProgramClient(appid={self.appid!r}, api_base={self._calls.api_base!r})"

    async def access_token(self) -> str:
        """The cached token, fetched (once across workers) if missing; e.g. to warm the cache."""
        return await self._calls.access_token()

    async def _fetch_token(self) -> FetchedToken:
        # stable_token keeps returning the same token while it is valid (unlike /cgi-bin/token,
        # which revokes the previous one), so a second fetch somewhere else breaks nothing.
        data = await self._calls.transport.request_json(
            "POST",
            self._calls.url("/cgi-bin/stable_token"),
            json_body={
                "grant_type": "client_credential",
                "appid": self.appid,
                "secret": self._secret,
                "force_refresh": False,
            },
        )
        return FetchedToken(str(data["access_token"]), int(data["expires_in"]))

    async def code2session(self, code: str) -> LoginSession:
        data = await self._calls.transport.request_json(
            "GET",
            self._calls.url("/sns/jscode2session"),
            params={
                "appid": self.appid,
                "secret": self._secret,
                "js_code": code,
                "grant_type": "authorization_code",
            },
        )
        return LoginSession(
            openid=str(data["openid"]),
            session_key=str(data["session_key"]),
            unionid=optional_str(data, "unionid"),
        )

    async def get_phone_number(self, code: str) -> PhoneNumber:
        data = await self._calls.request_json(
            "POST", "/wxa/business/getuserphonenumber", body={"code": code}
        )
        info = data["phone_info"]
        return PhoneNumber(
            phone_number=str(info["phoneNumber"]),
            pure_phone_number=str(info["purePhoneNumber"]),
            country_code=str(info["countryCode"]),
        )

    async def get_face_verify_result(self, verify_result: str) -> FaceVerifyResult:
        data = await self._calls.request_json(
            "POST", "/cityservice/face/identify/getinfo", body={"verify_result": verify_result}
        )
        return FaceVerifyResult(
            identify_ret=int(data["identify_ret"]),
            openid=str(data.get("openid", "")),
            id_card_number_md5=str(data.get("id_card_number_md5", "")),
            name_utf8_md5=str(data.get("name_utf8_md5", "")),
            identify_time=optional_int(data, "identify_time"),
            finish_time=optional_int(data, "finish_time"),
            validate_data=optional_str(data, "validate_data"),
            user_id_key=optional_str(data, "user_id_key"),
        )

    async def send_subscribe_message(
        self,
        openid: str,
        template_id: str,
        data: Mapping[str, str],
        page: str | None = None,
        *,
        miniprogram_state: str | None = None,
        lang: str = "zh_CN",
    ) -> None:
        """``data`` maps template keys (``thing1``, ``time2``…) to their values."""
        body: dict[str, Any] = {
            "touser": openid,
            "template_id": template_id,
            "data": {name: {"value": value} for name, value in data.items()},
            "lang": lang,
        }
        if page is not None:
            body["page"] = page
        if miniprogram_state is not None:
            body["miniprogram_state"] = miniprogram_state
        await self._calls.request_json(
            "POST", "/cgi-bin/message/subscribe/send", body=body, idempotent=False
        )

    async def get_unlimited_wxacode(
        self,
        scene: str,
        page: str | None = None,
        width: int = 430,
        *,
        check_path: bool = True,
        env_version: str = "release",
    ) -> bytes:
        """The mini-program code image (JPEG or PNG bytes)."""
        body: dict[str, Any] = {
            "scene": scene,
            "width": width,
            "check_path": check_path,
            "env_version": env_version,
        }
        if page is not None:
            body["page"] = page
        return await self._calls.request_bytes("POST", "/wxa/getwxacodeunlimit", body=body)
