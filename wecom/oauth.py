"""WeCom OAuth for the bureau's corp members: the authorize URL with a single-use state, and what
a completed login yields (a "wecom" session, or a staff session for staff who asked for one).

A member bound to a real-name person gets a session that carries that person's rights
(account_id = the WeComMember row, person_id = the person). A member not bound yet gets a
session whose only use is binding: its account id is a negative, per-login number whose userid
waits in Redis for ``PENDING_TTL`` seconds, so the session is worthless after that even though
the session store keeps it longer, and a negative id never meets a member row's
``revoke_all``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal
from urllib.parse import quote, urlencode

from auth import audit
from auth.models import StaffUser
from auth.sessions import SessionStore
from wecom.models import WeComMember

AUTHORIZE_URL = "https://open.weixin.qq.com/connect/oauth2/authorize"
PREFIX = "suban:wecom-oauth"
STATE_TTL = 300
PENDING_TTL = 600
# token_urlsafe(24) is 32 characters; anything much longer is not ours and is not looked up.
MAX_STATE_LENGTH = 64
MAX_NEXT_LENGTH = 512

Purpose = Literal["member", "staff"]


class InvalidNext(ValueError):
    """``next`` is not a same-site relative path."""


class NotStaff(Exception):
    """The member is no active staff account (staff login through WeCom)."""


@dataclass(frozen=True)
class OAuthState:
    next: str
    purpose: Purpose


@dataclass(frozen=True)
class MemberLogin:
    token: str
    expires_in: int
    member: WeComMember | None

    @property
    def bound(self) -> bool:
        return self.member is not None


@dataclass(frozen=True)
class StaffWeComLogin:
    token: str
    expires_in: int
    user: StaffUser


def safe_next(value: str | None) -> str:
    """``next`` as given when it is a path on this site; "/" when absent.

    "//host" and "/\\host" are scheme-relative URLs to browsers (they treat "\\" as "/"), and
    control characters can split headers or be dropped into such a form, so all are refused:
    an open redirect after login is a phishing tool.
    """
    if value is None or value == "":
        return "/"
    if (
        len(value) > MAX_NEXT_LENGTH
        or not value.startswith("/")
        or value.startswith("//")
        or "\\" in value
        or any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in value)
    ):
        raise InvalidNext(value)
    return value


def authorize_url(
    corp_id: str, agent_id: int, redirect_uri: str, state: str, *, base: str = AUTHORIZE_URL
) -> str:
    """WeCom's web OAuth URL (snsapi_base: the userid only, no confirmation page); ``base`` is
    another page speaking the same protocol, e.g. the simulator's in dev mode."""
    query = urlencode(
        {
            "appid": corp_id,
            "redirect_uri": redirect_uri,
            "response_type": "code",
            "scope": "snsapi_base",
            "agentid": str(agent_id),
            "state": state,
        },
        quote_via=quote,
    )
    # WeCom requires the parameters in this order and the fragment, or it shows an error page.
    return f"{base}?{query}#wechat_redirect"


def _state_key(state: str) -> str:
    return f"{PREFIX}:state:{state}"


def _pending_key(pending_id: int) -> str:
    return f"{PREFIX}:pending:{pending_id}"


def new_browser_secret() -> str:
    """What the start route hands the browser (an HttpOnly cookie) beside the state."""
    return secrets.token_urlsafe(24)


def _browser_digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


async def begin(redis: Any, next_path: str, purpose: Purpose = "member", *, browser: str) -> str:
    """A fresh state bound to where the login should land and to the browser that started it
    (``browser``, kept only as a digest); lives ``STATE_TTL`` seconds.

    Without the browser binding a callback URL, code and state included, would log in whoever
    opens it: a member could start a login, stop before WeCom's redirect and send the link to a
    colleague, whose browser would then work under the sender's identity (login CSRF)."""
    state = secrets.token_urlsafe(24)
    payload = json.dumps(
        {"next": next_path, "purpose": purpose, "browser": _browser_digest(browser)}
    )
    await redis.set(_state_key(state), payload, ex=STATE_TTL, nx=True)
    return state


async def consume_state(redis: Any, state: str, browser: str | None) -> OAuthState | None:
    """The state's login, once (GETDEL: a replayed callback URL finds nothing), and only in the
    browser that started it; a state opened elsewhere is spent all the same, so a link sent to
    someone else is dead once they open it."""
    if not state or len(state) > MAX_STATE_LENGTH:
        return None
    raw = await redis.getdel(_state_key(state))
    if raw is None or not browser:
        return None
    data = json.loads(raw)
    if not hmac.compare_digest(str(data.get("browser", "")), _browser_digest(browser)):
        return None
    purpose: Purpose = "staff" if data.get("purpose") == "staff" else "member"
    return OAuthState(next=str(data.get("next") or "/"), purpose=purpose)


async def login_member(
    userid: str, *, sessions: SessionStore, redis: Any, now: datetime
) -> MemberLogin:
    member = await WeComMember.get_or_none(userid=userid)
    if member is not None:
        await WeComMember.filter(id=member.id).update(last_login_at=now)
        token = await sessions.create("wecom", member.id, member.person_id)  # type: ignore[attr-defined]
        return MemberLogin(token, sessions.lifetime("wecom").idle, member)
    pending_id = int(await redis.incr(f"{PREFIX}:pending-seq"))
    await redis.set(_pending_key(pending_id), userid, ex=PENDING_TTL)
    token = await sessions.create("wecom", -pending_id, None)
    return MemberLogin(token, PENDING_TTL, None)


async def pending_userid(redis: Any, account_id: int) -> str | None:
    """The userid of an unbound member's session (negative account id); None once it lapsed."""
    if account_id >= 0:
        return None
    raw = await redis.get(_pending_key(-account_id))
    if raw is None:
        return None
    return raw.decode() if isinstance(raw, bytes) else str(raw)


async def forget_pending(redis: Any, account_id: int) -> None:
    if account_id < 0:
        await redis.delete(_pending_key(-account_id))


async def login_staff(
    userid: str, *, sessions: SessionStore, now: datetime, request_id: str | None
) -> StaffWeComLogin:
    """A staff session for the active staff account mapped to this corp member. WeCom has
    already authenticated the person, so there is no password or TOTP step; roles are read from
    the account on every staff request as with password login."""
    user = await StaffUser.get_or_none(wecom_userid=userid)
    if user is None or not user.active:
        await audit.record(
            "staff.login",
            audit.Actor("anonymous", None, request_id),
            target=f"staff:{user.username}" if user is not None else None,
            outcome="denied",
            details={"method": "wecom", "reason": "inactive" if user else "not_staff"},
            at=now,
        )
        raise NotStaff(userid)
    await StaffUser.filter(id=user.id).update(last_login_at=now)
    token = await sessions.create("staff", user.id, None)
    await audit.record(
        "staff.login",
        audit.Actor("staff", user.id, request_id),
        target=f"staff:{user.username}",
        details={"method": "wecom"},
        at=now,
    )
    return StaffWeComLogin(token, sessions.lifetime("staff").idle, user)
