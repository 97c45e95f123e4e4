"""Staff accounts of the bureau: creation, passwords, optional TOTP, login with lockout.

Passwords are hashed with Argon2id (argon2-cffi's defaults, RFC 9106's low-memory profile) and
re-hashed on the next login when those defaults change. Hashing runs in a thread: it is tens of
milliseconds of CPU that would otherwise stall every other request on the worker.

Lockout: five failures in a row lock an account for fifteen minutes. Each attempt first claims
one of the five tries with a single conditional ``UPDATE … failed_logins = failed_logins + 1``
in the database, before the password is even checked, so parallel attempts on any number of
workers get exactly five tries between them. A success gives the count back to zero; a correct
password that still needs its TOTP code gives back only its own try, so asking for the code in
between wrong guesses cannot be used to guess codes for ever.

An unknown username costs one Argon2 verification like a known one and answers the same; it is
even "locked" after five tries (counted in Redis), so lockout does not tell which names exist.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, NoReturn

import pyotp
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from tortoise.exceptions import IntegrityError
from tortoise.expressions import F
from tortoise.transactions import in_transaction

from auth import audit, clock
from auth.models import StaffUser
from auth.pii import Keyring
from auth.ratelimit import Limit, RateLimiter
from auth.roles import STAFF_ROLES, staff_permissions
from auth.sessions import SessionStore

USERNAME_PATTERN = re.compile(r"[a-z0-9_.-]{3,64}")
MIN_PASSWORD_LENGTH = 10
MAX_PASSWORD_LENGTH = 1024
MAX_DISPLAY_NAME_LENGTH = 64
LOCKOUT_AFTER = 5
LOCKOUT_SECONDS = 15 * 60
# One 30-second step either side of now: phone clocks drift.
OTP_VALID_WINDOW = 1
OTP_STEP_SECONDS = 30
# A code is acceptable for at most three steps; remember it a little longer than that.
OTP_MEMORY_SECONDS = OTP_STEP_SECONDS * (2 * OTP_VALID_WINDOW + 1) + OTP_STEP_SECONDS
OTP_ISSUER = "速办税"
OTP_USED_PREFIX = "suban:staff-otp"
UNKNOWN_BUCKET = "staff-login-unknown"
UNKNOWN_LIMIT = Limit(limit=LOCKOUT_AFTER, window=LOCKOUT_SECONDS)

HASHER = PasswordHasher()

TABLE = "staff_user"
TOTP_COLUMN = "totp_secret"


class InvalidStaff(ValueError):
    """A value for a staff account breaks a rule. ``detail`` for operators (the CLI), ``message``
    for people (an admin page)."""

    def __init__(self, field: str, detail: str, message: str) -> None:
        super().__init__(f"{field}: {detail}")
        self.field = field
        self.detail = detail
        self.message = message


class UsernameTaken(InvalidStaff):
    def __init__(self, username: str) -> None:
        super().__init__("username", f"{username} is taken", "用户名已被使用")


class StaffNotFound(LookupError):
    def __init__(self, username: str) -> None:
        super().__init__(f"no staff user {username}")
        self.username = username


class LoginRefused(Exception):
    """A staff login did not pass. ``code`` is the contract's error code, ``reason`` the audit's."""

    code = "INVALID_CREDENTIALS"
    reason = "bad_password"
    message = "用户名或密码错误"

    def __init__(self) -> None:
        super().__init__(self.code)


class BadCredentials(LoginRefused):
    pass


class OtpRequired(LoginRefused):
    code = "OTP_REQUIRED"
    reason = "otp_required"
    message = "请输入动态验证码"


class BadOtp(LoginRefused):
    code = "INVALID_OTP"
    reason = "bad_otp"
    message = "动态验证码错误或已使用"


class AccountInactive(LoginRefused):
    code = "ACCOUNT_INACTIVE"
    reason = "inactive"
    message = "账号已停用，请联系管理员"


class AccountLocked(LoginRefused):
    code = "ACCOUNT_LOCKED"
    reason = "locked"

    def __init__(self, retry_after: int) -> None:
        super().__init__()
        self.retry_after = max(1, retry_after)
        minutes = math.ceil(self.retry_after / 60)
        self.message = f"登录失败次数过多，账号已临时锁定，请 {minutes} 分钟后再试"


@dataclass(frozen=True)
class NewStaff:
    user: StaffUser
    # Shown once to whoever sets up the authenticator app; never stored in the clear.
    otp_uri: str | None


@dataclass(frozen=True)
class StaffLogin:
    token: str
    expires_in: int
    user: StaffUser


def permissions_of(user: StaffUser) -> frozenset[str]:
    return staff_permissions(list(user.roles))


def check_username(username: str) -> str:
    if not USERNAME_PATTERN.fullmatch(username):
        raise InvalidStaff(
            "username",
            "must be 3-64 characters of a-z, 0-9, '_', '.', '-'",
            "用户名应为 3–64 个小写字母、数字或 _ . -",
        )
    return username


def check_password(password: str) -> str:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidStaff(
            "password",
            f"must be at least {MIN_PASSWORD_LENGTH} characters",
            f"密码至少 {MIN_PASSWORD_LENGTH} 个字符",
        )
    if len(password) > MAX_PASSWORD_LENGTH:
        raise InvalidStaff(
            "password",
            f"must be at most {MAX_PASSWORD_LENGTH} characters",
            f"密码最多 {MAX_PASSWORD_LENGTH} 个字符",
        )
    return password


def check_roles(roles: Sequence[str]) -> list[str]:
    unique = list(dict.fromkeys(roles))
    if not unique:
        raise InvalidStaff("roles", "at least one role is needed", "至少需要一个角色")
    unknown = [r for r in unique if r not in STAFF_ROLES]
    if unknown:
        known = ", ".join(STAFF_ROLES)
        raise InvalidStaff(
            "roles", f"unknown role {unknown[0]} (known: {known})", f"未知角色 {unknown[0]}"
        )
    return unique


def check_display_name(display_name: str) -> str:
    name = display_name.strip()
    if not name or len(name) > MAX_DISPLAY_NAME_LENGTH:
        raise InvalidStaff(
            "display_name",
            f"must be 1-{MAX_DISPLAY_NAME_LENGTH} characters",
            f"显示名称应为 1–{MAX_DISPLAY_NAME_LENGTH} 个字符",
        )
    return name


async def hash_password(password: str, hasher: PasswordHasher = HASHER) -> str:
    return await asyncio.to_thread(hasher.hash, password)


async def _verify(hasher: PasswordHasher, password_hash: str, password: str) -> bool:
    try:
        return await asyncio.to_thread(hasher.verify, password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


_dummy_hashes: dict[tuple[Any, ...], str] = {}


async def _dummy_hash(hasher: PasswordHasher) -> str:
    """A hash made with ``hasher``'s own parameters, so verifying against it costs what a real
    account's verification costs."""
    shape = (hasher.type, hasher.time_cost, hasher.memory_cost, hasher.parallelism)
    if shape not in _dummy_hashes:
        _dummy_hashes[shape] = await hash_password("suban: no such staff user", hasher)
    return _dummy_hashes[shape]


def _target(username: str) -> str:
    # A username names a work account, not a person's data: fine in the audit trail.
    return f"staff:{username}"


def otp_uri(username: str, secret: str) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=username, issuer_name=OTP_ISSUER)


async def create_staff(
    username: str,
    password: str,
    *,
    roles: Sequence[str],
    keyring: Keyring,
    display_name: str | None = None,
    totp: bool = False,
    actor: audit.Actor = audit.SYSTEM,
    hasher: PasswordHasher = HASHER,
) -> NewStaff:
    """A new, active staff account; with ``totp``, also its TOTP secret (sealed) and the
    provisioning URI to show once. Raises :class:`InvalidStaff` (or :class:`UsernameTaken`)."""
    check_username(username)
    check_password(password)
    role_list = check_roles(roles)
    name = check_display_name(display_name if display_name is not None else username)
    if await StaffUser.exists(username=username):
        raise UsernameTaken(username)
    password_hash = await hash_password(password, hasher)
    uri: str | None = None
    try:
        async with in_transaction():
            user = await StaffUser.create(
                username=username, display_name=name, password_hash=password_hash, roles=role_list
            )
            if totp:
                # Sealed under the row's own id, which exists only once the row does.
                secret = pyotp.random_base32()
                user.totp_secret_sealed = keyring.seal(
                    secret, table=TABLE, column=TOTP_COLUMN, row_id=user.id
                )
                await user.save(update_fields=["totp_secret_sealed"])
                uri = otp_uri(username, secret)
    except IntegrityError as exc:
        raise UsernameTaken(username) from exc
    await audit.record(
        "staff.create",
        actor,
        target=_target(username),
        details={"roles": ",".join(role_list), "totp": totp},
    )
    return NewStaff(user, uri)


async def _existing(username: str) -> StaffUser:
    user = await StaffUser.get_or_none(username=username)
    if user is None:
        raise StaffNotFound(username)
    return user


async def set_password(
    username: str,
    password: str,
    *,
    actor: audit.Actor = audit.SYSTEM,
    hasher: PasswordHasher = HASHER,
) -> StaffUser:
    """A new password, and the lockout cleared (whoever resets it has vouched for the person)."""
    check_password(password)
    user = await _existing(username)
    password_hash = await hash_password(password, hasher)
    await StaffUser.filter(id=user.id).update(
        password_hash=password_hash, failed_logins=0, locked_until=None
    )
    await audit.record("staff.password_reset", actor, target=_target(username))
    await user.refresh_from_db()
    return user


async def unlock(username: str, *, actor: audit.Actor = audit.SYSTEM) -> StaffUser:
    user = await _existing(username)
    await StaffUser.filter(id=user.id).update(failed_logins=0, locked_until=None)
    await audit.record("staff.unlock", actor, target=_target(username))
    await user.refresh_from_db()
    return user


async def login_staff(
    username: str,
    password: str,
    otp: str | None,
    *,
    sessions: SessionStore,
    redis: Any,
    keyring: Keyring,
    request_id: str | None = None,
    now: datetime | None = None,
    hasher: PasswordHasher = HASHER,
) -> StaffLogin:
    """Check the credentials and open a staff session; raises a :class:`LoginRefused`. The
    username is matched in lower case (as accounts are made). Every outcome is in the audit
    trail, with reason codes and never a password or code."""
    # Lock times are written and compared in the database's zone (auth/clock.py): a UTC `now`
    # stored by one attempt and a Shanghai one compared by the next would disagree on SQLite.
    now = clock.local(now) if now else clock.now()
    username = username.strip().lower()
    anonymous = audit.Actor("anonymous", None, request_id)
    # A name no account can have is not looked up (nor can it break the column's length check).
    known = USERNAME_PATTERN.fullmatch(username) is not None
    user = await StaffUser.get_or_none(username=username) if known else None
    if user is None:
        await _refuse_unknown(username, password, redis, anonymous, now, hasher)
    try:
        await _check(
            user,
            password,
            otp,
            redis=redis,
            keyring=keyring,
            now=now,
            hasher=hasher,
            request_id=request_id,
        )
    except LoginRefused as refused:
        await audit.record(
            "staff.login",
            anonymous,
            target=_target(username),
            outcome="denied",
            details={"reason": refused.reason},
            at=now,
        )
        if isinstance(refused, BadCredentials | BadOtp) and await _start_lock(user, now):
            await _record_locked(user, request_id, now)
        raise
    await _succeeded(user, password, now, hasher)
    token = await sessions.create("staff", user.id, None)
    await audit.record(
        "staff.login",
        audit.Actor("staff", user.id, request_id),
        target=_target(username),
        details={"otp": user.totp_secret_sealed is not None},
        at=now,
    )
    await user.refresh_from_db()
    return StaffLogin(token, sessions.lifetime("staff").idle, user)


async def _refuse_unknown(
    username: str,
    password: str,
    redis: Any,
    anonymous: audit.Actor,
    now: datetime,
    hasher: PasswordHasher,
) -> NoReturn:
    # The typed name is not kept: people type passwords into the username box.
    name_key = hashlib.sha256(username.encode()).hexdigest()
    verdict = await RateLimiter(redis).hit(UNKNOWN_BUCKET, [name_key], UNKNOWN_LIMIT)
    if verdict.allowed:
        await _verify(hasher, await _dummy_hash(hasher), password)
    await audit.record(
        "staff.login",
        anonymous,
        outcome="denied",
        details={"reason": "unknown_user"},
        at=now,
    )
    if not verdict.allowed:
        raise AccountLocked(verdict.retry_after)
    raise BadCredentials()


async def _check(
    user: StaffUser,
    password: str,
    otp: str | None,
    *,
    redis: Any,
    keyring: Keyring,
    now: datetime,
    hasher: PasswordHasher,
    request_id: str | None,
) -> None:
    # A lock that has run out ends here, for whichever attempt comes first.
    await StaffUser.filter(id=user.id, locked_until__lte=now).update(
        failed_logins=0, locked_until=None
    )
    claimed = await StaffUser.filter(
        id=user.id, locked_until__isnull=True, failed_logins__lt=LOCKOUT_AFTER
    ).update(failed_logins=F("failed_logins") + 1)
    if not claimed:
        raise AccountLocked(await _locked_for(user, now, request_id))
    if not await _verify(hasher, user.password_hash, password):
        raise BadCredentials()
    if not user.active:
        await _give_back_try(user)
        raise AccountInactive()
    sealed = user.totp_secret_sealed
    if sealed is not None:
        if not otp:
            await _give_back_try(user)
            raise OtpRequired()
        if not await _otp_accepted(user, sealed, otp, keyring=keyring, redis=redis, now=now):
            raise BadOtp()


async def _give_back_try(user: StaffUser) -> None:
    await StaffUser.filter(id=user.id, failed_logins__gt=0).update(
        failed_logins=F("failed_logins") - 1
    )


async def _start_lock(user: StaffUser, now: datetime) -> bool:
    """Lock the account if its tries are used up and no lock runs yet; True for the one caller
    that started it (it alone records staff.locked)."""
    started = await StaffUser.filter(
        id=user.id, failed_logins__gte=LOCKOUT_AFTER, locked_until__isnull=True
    ).update(locked_until=now + timedelta(seconds=LOCKOUT_SECONDS))
    return bool(started)


async def _locked_for(user: StaffUser, now: datetime, request_id: str | None) -> int:
    """Seconds until the lock ends. All five tries may be claimed with no lock yet (the fifth
    still being checked, or its worker gone): then the lock starts here, so it always ends."""
    if await _start_lock(user, now):
        await _record_locked(user, request_id, now)
    current = await StaffUser.get_or_none(id=user.id)
    locked_until = current.locked_until if current is not None else None
    if locked_until is None:  # a success cleared it just now
        return 1
    # Attempts take their clock when they begin: one begun before the lock's start would
    # otherwise be told a little more than the whole lockout.
    return min(LOCKOUT_SECONDS, math.ceil((locked_until - now).total_seconds()))


async def _record_locked(user: StaffUser, request_id: str | None, now: datetime) -> None:
    await audit.record(
        "staff.locked",
        audit.Actor("system", None, request_id),
        target=_target(user.username),
        details={"failures": LOCKOUT_AFTER, "seconds": LOCKOUT_SECONDS},
        at=now,
    )


async def _otp_accepted(
    user: StaffUser, sealed: str, otp: str, *, keyring: Keyring, redis: Any, now: datetime
) -> bool:
    secret = keyring.open(sealed, table=TABLE, column=TOTP_COLUMN, row_id=user.id)
    if not pyotp.TOTP(secret).verify(otp, for_time=now, valid_window=OTP_VALID_WINDOW):
        return False
    # Once only: the first SET wins on every worker; a replayed (seen, stolen) code fails.
    first_use = await redis.set(
        f"{OTP_USED_PREFIX}:{user.id}:{otp}", b"1", nx=True, ex=OTP_MEMORY_SECONDS
    )
    return bool(first_use)


async def _succeeded(user: StaffUser, password: str, now: datetime, hasher: PasswordHasher) -> None:
    await StaffUser.filter(id=user.id).update(failed_logins=0, locked_until=None, last_login_at=now)
    if hasher.check_needs_rehash(user.password_hash):
        fresh = await hash_password(password, hasher)
        # Only over the hash just verified: a password reset in the meantime wins.
        await StaffUser.filter(id=user.id, password_hash=user.password_hash).update(
            password_hash=fresh
        )
