"""Linking a WeCom member to a real-name person with a one-time code, unlinking, and reading who
a "wecom" session stands for.

One member ↔ one person: both columns of ``wecom_member`` are unique, so two racing binds of the
same member or person cannot both land; the loser is answered as already bound.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from auth import audit
from auth.bind_codes import redeem_bind_code
from auth.ratelimit import RateLimiter
from auth.sessions import Session, SessionStore
from wecom import oauth
from wecom.models import WeComMember


class InvalidBindCode(Exception):
    """Wrong, used or expired code."""


class AlreadyBound(Exception):
    """The member already has a person, or the person already has a member."""


@dataclass(frozen=True)
class MemberIdentity:
    """Who a live "wecom" session is: the corp userid and, once bound, the member row."""

    userid: str
    member: WeComMember | None


async def identity_of(redis: Any, session: Session) -> MemberIdentity | None:
    """None when the session no longer stands for anyone: its member was unbound (the row is
    gone or now names another person) or, unbound, its pending login lapsed."""
    if session.account_id < 0:
        userid = await oauth.pending_userid(redis, session.account_id)
        return None if userid is None else MemberIdentity(userid, None)
    member = await WeComMember.get_or_none(id=session.account_id)
    if member is None or member.person_id != session.person_id:  # type: ignore[attr-defined]
        return None
    return MemberIdentity(member.userid, member)


async def bind(
    userid: str,
    code: str,
    *,
    redis: Any,
    limiter: RateLimiter,
    now: datetime,
    request_id: str | None,
) -> WeComMember:
    """Redeem ``code`` for ``userid``. Raises TooManyBindAttempts (from the code's guessing limit,
    counted per member before the code is looked at), InvalidBindCode, AlreadyBound."""
    who = f"wecom:{userid}"
    # Checked before the code is redeemed so a member that is bound already does not burn a
    # good code; the guessing limit still counts the attempt.
    if await WeComMember.exists(userid=userid):
        await redeem_limit_only(redis, limiter, who)
        raise AlreadyBound(userid)
    person_id = await redeem_bind_code(redis, limiter, code, who)
    if person_id is None:
        raise InvalidBindCode(code)
    try:
        async with in_transaction():
            if await WeComMember.exists(person_id=person_id):
                raise AlreadyBound(userid)
            member = await WeComMember.create(userid=userid, person_id=person_id, bound_at=now)
    except IntegrityError as exc:  # a concurrent bind of the same member or person won
        raise AlreadyBound(userid) from exc
    await audit.record(
        "wecom.bind",
        audit.Actor("wecom", member.id, request_id),
        target=f"person:{person_id}",
        details={"member_id": member.id},
        at=now,
    )
    return member


async def redeem_limit_only(redis: Any, limiter: RateLimiter, who: str) -> None:
    """Count an attempt against the guessing limit without touching any code."""
    # A code of the wrong shape is never looked up, but the attempt is counted (and refused
    # with TooManyBindAttempts once over the limit), which is all we want here.
    await redeem_bind_code(redis, limiter, "", who)


async def unbind(
    member: WeComMember,
    *,
    sessions: SessionStore,
    actor: audit.Actor,
    now: datetime,
) -> None:
    """Delete the link and end every session of the member (they carried the person's rights)."""
    deleted = await WeComMember.filter(id=member.id).delete()
    await sessions.revoke_all("wecom", member.id)
    if deleted:
        await audit.record(
            "wecom.unbind",
            actor,
            target=f"person:{member.person_id}",  # type: ignore[attr-defined]
            details={"member_id": member.id},
            at=now,
        )
