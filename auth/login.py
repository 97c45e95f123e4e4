"""Mini-program login: a wx.login code becomes a WeChat account and a session."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from auth import audit, clock
from auth.models import Person, WeChatAccount
from auth.sessions import SessionStore


class CodeExchanger(Protocol):
    async def code2session(self, code: str) -> _LoginSession: ...


class _LoginSession(Protocol):
    openid: str
    unionid: str | None


@dataclass(frozen=True)
class LoginResult:
    token: str
    expires_in: int
    account_id: int
    realname_verified: bool


async def login_with_wechat(
    code: str,
    *,
    wechat: CodeExchanger,
    sessions: SessionStore,
    request_id: str | None = None,
    now: datetime | None = None,
) -> LoginResult:
    """Exchange ``code`` (errors of the exchange propagate, typed), upsert the account, open a
    session. WeChat's session_key is not kept: nothing here needs it, so nothing can leak it."""
    exchanged = await wechat.code2session(code)
    account, _ = await WeChatAccount.get_or_create(
        openid=exchanged.openid, defaults={"unionid": exchanged.unionid}
    )
    account.last_login_at = now or clock.now()
    if exchanged.unionid and account.unionid != exchanged.unionid:
        account.unionid = exchanged.unionid
    await account.save()
    person_id: int | None = account.person_id  # type: ignore[attr-defined]
    person = await Person.get_or_none(id=person_id) if person_id is not None else None
    verified = person is not None and person.verified_at is not None
    token = await sessions.create("mp", account.id, person.id if person else None)
    await audit.record(
        "mp.login", audit.Actor("mp", account.id, request_id), target=f"account:{account.id}"
    )
    return LoginResult(token, sessions.ttl, account.id, verified)
