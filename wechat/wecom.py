"""Async client for the WeCom (企业微信) server APIs we use: OAuth identity, app messages, OA
approvals and JS-SDK tickets. Tokens are per app (agent), since each app has its own secret."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from wechat.errors import InvalidAccessToken, InvalidCredential
from wechat.token_calls import TokenCalls
from wechat.tokens import FetchedToken, TokenKey, TokenStore
from wechat.transport import JsonObject, Transport, optional_str

WECOM_API_BASE = "https://qyapi.weixin.qq.com"

# "corp": the corp's jsapi_ticket, signing wx.config; "agent": the app's ticket
# (ticket/get?type=agent_config), signing wx.agentConfig.
JsapiTicketKind = Literal["corp", "agent"]


@dataclass(frozen=True)
class WeComIdentity:
    """Who completed WeCom OAuth: a corp member (``userid``) or, for outsiders, an ``openid``."""

    userid: str | None
    openid: str | None = None
    external_userid: str | None = None
    user_ticket: str | None = field(default=None, repr=False)

    @property
    def is_member(self) -> bool:
        return self.userid is not None


@dataclass(frozen=True)
class SendResult:
    """WeCom accepts a message even when some recipients are invalid; it lists them here."""

    msgid: str | None
    invalid_users: tuple[str, ...] = ()
    invalid_parties: tuple[str, ...] = ()
    invalid_tags: tuple[str, ...] = ()


class WeComClient:
    def __init__(
        self,
        corp_id: str,
        secret: str,
        agent_id: int,
        api_base: str,
        transport: Transport,
        tokens: TokenStore,
    ) -> None:
        self.corp_id = corp_id
        self.agent_id = int(agent_id)
        self._secret = secret
        self._tokens = tokens
        # Tickets live in the token store beside the access token: the same Redis cache, the same
        # single-flight refresh across workers (WeCom caps ticket fetches per hour), the same
        # compare-and-delete when one turns out to be invalid.
        self._ticket_keys: dict[JsapiTicketKind, TokenKey] = {
            "corp": TokenKey("wecom_jsapi", corp_id, str(self.agent_id)),
            "agent": TokenKey("wecom_agent_jsapi", corp_id, str(self.agent_id)),
        }
        self._calls = TokenCalls(
            api_base,
            transport,
            tokens,
            TokenKey("wecom", corp_id, str(self.agent_id)),
            self._fetch_token,
        )

    def __repr__(self) -> str:
        return (
            f"WeComClient(corp_id={self.corp_id!r}, agent_id={self.agent_id}, "
            f"api_base={self._calls.api_base!r})"
        )

    async def access_token(self) -> str:
        """The cached token, fetched (once across workers) if missing; e.g. to warm the cache."""
        return await self._calls.access_token()

    async def _fetch_token(self) -> FetchedToken:
        try:
            data = await self._calls.transport.request_json(
                "GET",
                self._calls.url("/cgi-bin/gettoken"),
                params={"corpid": self.corp_id, "corpsecret": self._secret},
            )
        except InvalidAccessToken as exc:
            # On gettoken, 40001 means a wrong corpsecret, not a stale token.
            raise InvalidCredential(exc.errcode, exc.errmsg) from exc
        return FetchedToken(str(data["access_token"]), int(data["expires_in"]))

    async def jsapi_ticket(self, kind: JsapiTicketKind) -> str:
        """The cached JS-SDK ticket of ``kind``, fetched (once across workers) when missing; it
        is cached for WeCom's ``expires_in`` less the store's safety margin."""
        fetch = self._fetch_corp_ticket if kind == "corp" else self._fetch_agent_ticket
        return await self._tokens.get(self._ticket_keys[kind], fetch)

    async def drop_jsapi_ticket(self, kind: JsapiTicketKind, ticket: str) -> bool:
        """Forget ``ticket`` if it is still the cached one (WeCom stopped accepting it), so the
        next :meth:`jsapi_ticket` fetches a fresh one; True if it was removed."""
        return await self._tokens.invalidate(self._ticket_keys[kind], ticket)

    async def _fetch_corp_ticket(self) -> FetchedToken:
        data = await self._calls.request_json("GET", "/cgi-bin/get_jsapi_ticket")
        return FetchedToken(str(data["ticket"]), int(data["expires_in"]))

    async def _fetch_agent_ticket(self) -> FetchedToken:
        data = await self._calls.request_json(
            "GET", "/cgi-bin/ticket/get", params={"type": "agent_config"}
        )
        return FetchedToken(str(data["ticket"]), int(data["expires_in"]))

    async def get_user_info(self, code: str) -> WeComIdentity:
        data = await self._calls.request_json(
            "GET", "/cgi-bin/auth/getuserinfo", params={"code": code}
        )
        return WeComIdentity(
            userid=optional_str(data, "userid"),
            openid=optional_str(data, "openid"),
            external_userid=optional_str(data, "external_userid"),
            user_ticket=optional_str(data, "user_ticket"),
        )

    async def send_message(
        self,
        touser: str | Sequence[str],
        msgtype: str,
        content: Mapping[str, Any],
        *,
        safe: bool = False,
    ) -> SendResult:
        """``content`` is the body of the ``msgtype`` key, e.g. ``{"content": "..."}`` for text."""
        recipients = touser if isinstance(touser, str) else "|".join(touser)
        data = await self._calls.request_json(
            "POST",
            "/cgi-bin/message/send",
            body={
                "touser": recipients,
                "msgtype": msgtype,
                "agentid": self.agent_id,
                msgtype: dict(content),
                "safe": int(safe),
            },
            idempotent=False,
        )
        return SendResult(
            msgid=optional_str(data, "msgid"),
            invalid_users=_split(data, "invaliduser"),
            invalid_parties=_split(data, "invalidparty"),
            invalid_tags=_split(data, "invalidtag"),
        )

    async def apply_event(self, payload: Mapping[str, Any]) -> str:
        """Files an OA approval (``creator_userid``, ``template_id``, ``approver``,
        ``apply_data``…) and returns its ``sp_no``."""
        data = await self._calls.request_json(
            "POST", "/cgi-bin/oa/applyevent", body=payload, idempotent=False
        )
        return str(data["sp_no"])

    async def get_approval_detail(self, sp_no: str) -> dict[str, Any]:
        """The approval's ``info`` object; ``info["sp_status"]``: 1 审批中, 2 已通过, 3 已驳回,
        4 已转审, 6 已撤销, 7 已删除, 10 已支付."""
        data = await self._calls.request_json(
            "POST", "/cgi-bin/oa/getapprovaldetail", body={"sp_no": sp_no}
        )
        info: dict[str, Any] = data["info"]
        return info


def _split(data: JsonObject, name: str) -> tuple[str, ...]:
    value = str(data.get(name) or "")
    return tuple(part for part in value.split("|") if part)
