"""A mobile number verified by WeChat (getPhoneNumber → getuserphonenumber), sealed at rest.

Before real-name verification there is no person to hold it, so it waits, sealed, on the WeChat
account and moves to the person when the account is verified (auth/realname.py).
"""

from __future__ import annotations

from typing import Protocol

from auth import audit
from auth.models import Person, WeChatAccount
from auth.pii import Keyring
from auth.ratelimit import Limit, RateLimiter

PHONE_LIMIT = Limit(limit=10, window=600)


class _Phone(Protocol):
    pure_phone_number: str
    country_code: str


class PhoneSource(Protocol):
    async def get_phone_number(self, code: str) -> _Phone: ...


class TooManyPhoneAttempts(Exception):
    def __init__(self, retry_after: int) -> None:
        super().__init__("too many phone attempts")
        self.retry_after = retry_after


def canonical_phone(pure: str, country_code: str) -> str:
    """Mainland numbers as their 11 digits (how people read them); others with ``+<code>``."""
    return pure if country_code in ("86", "+86", "") else f"+{country_code.lstrip('+')}{pure}"


async def set_phone(
    account: WeChatAccount,
    code: str,
    *,
    wechat: PhoneSource,
    keyring: Keyring,
    limiter: RateLimiter,
    actor: audit.Actor,
    limit: Limit = PHONE_LIMIT,
) -> str:
    """Ask WeChat for the number behind ``code`` and keep it sealed; returns it for masking.
    WeChat's errors (an invalid code, WeChat down) propagate typed."""
    verdict = await limiter.hit("phone", [f"account:{account.id}"], limit)
    if not verdict.allowed:
        raise TooManyPhoneAttempts(verdict.retry_after)
    got = await wechat.get_phone_number(code)
    phone = canonical_phone(got.pure_phone_number, got.country_code)
    person_id: int | None = account.person_id  # type: ignore[attr-defined]
    person = await Person.get_or_none(id=person_id) if person_id is not None else None
    if person is not None:
        person.phone_sealed = keyring.seal(phone, table="person", column="phone", row_id=person.id)
        person.phone_index = keyring.blind_index(phone, purpose="phone")
        await person.save(update_fields=["phone_sealed", "phone_index", "updated_at"])
        target = f"person:{person.id}"
    else:
        account.phone_sealed = keyring.seal(
            phone, table="wechat_account", column="phone", row_id=account.id
        )
        await account.save(update_fields=["phone_sealed"])
        target = f"account:{account.id}"
    await audit.record("phone.set", actor, target=target)
    return phone
