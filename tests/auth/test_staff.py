"""Staff accounts: creation rules, Argon2 passwords, TOTP once only, lockout counted in the
database, unknown names answered like wrong passwords, and the audit trail of every attempt."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any, Literal
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

import pyotp
import pytest
from argon2 import PasswordHasher
from tortoise import Tortoise

from auth import staff
from auth.audit import Actor
from auth.models import AuditEvent, StaffUser
from auth.pii import Keyring
from auth.sessions import Lifetime, SessionStore
from miniapp_api.database import tortoise_config
from tests.conftest import TEST_PII_KEY

# Cheap parameters keep the suite fast; the rehash test shows the real ones take over.
FAST = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
PASSWORD = "correct horse battery"
RING = Keyring.build("aes-256-gcm", [(TEST_PII_KEY.version, TEST_PII_KEY.key)])
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@pytest.fixture
async def orm(database_url: str) -> AsyncIterator[None]:
    await Tortoise.init(config=tortoise_config(database_url), _enable_global_fallback=True)
    try:
        yield
    finally:
        await Tortoise.close_connections()


@pytest.fixture
def sessions(redis_client: Any) -> SessionStore:
    return SessionStore(redis_client, lifetimes={"staff": Lifetime(1800, 8 * 3600)})


def fresh_name() -> str:
    return f"u{uuid.uuid4().hex[:12]}"


async def new_staff(
    *, roles: tuple[str, ...] = ("reviewer",), totp: bool = False
) -> tuple[str, str | None]:
    """A fresh account's username and, with ``totp``, its TOTP secret."""
    name = fresh_name()
    created = await staff.create_staff(
        name, PASSWORD, roles=roles, keyring=RING, totp=totp, hasher=FAST
    )
    secret = None
    if created.otp_uri:
        secret = parse_qs(urlsplit(created.otp_uri).query)["secret"][0]
    return name, secret


async def login(
    name: str,
    password: str = PASSWORD,
    otp: str | None = None,
    *,
    redis: Any,
    sessions: SessionStore,
    now: datetime = T0,
    hasher: PasswordHasher = FAST,
) -> staff.StaffLogin:
    return await staff.login_staff(
        name,
        password,
        otp,
        sessions=sessions,
        redis=redis,
        keyring=RING,
        request_id="req-test",
        now=now,
        hasher=hasher,
    )


async def logins_of(name: str) -> list[tuple[str, str, str]]:
    """(action, outcome, reason) of every event about ``name``, oldest first."""
    events = await AuditEvent.filter(target=f"staff:{name}").order_by("id")
    return [(e.action, e.outcome, str(e.details.get("reason", ""))) for e in events]


# --------------------------------------------------------------------------- creating accounts


@pytest.mark.usefixtures("orm")
@pytest.mark.parametrize(
    ("username", "password", "roles", "field"),
    [
        ("ab", PASSWORD, ["reviewer"], "username"),
        ("Alice", PASSWORD, ["reviewer"], "username"),
        ("alice smith", PASSWORD, ["reviewer"], "username"),
        ("a" * 65, PASSWORD, ["reviewer"], "username"),
        ("alice", "123456789", ["reviewer"], "password"),
        ("alice", PASSWORD, [], "roles"),
        ("alice", PASSWORD, ["reviewer", "boss"], "roles"),
    ],
)
async def test_creation_rules(username: str, password: str, roles: list[str], field: str) -> None:
    with pytest.raises(staff.InvalidStaff) as caught:
        await staff.create_staff(username, password, roles=roles, keyring=RING, hasher=FAST)
    assert caught.value.field == field
    assert not await StaffUser.filter(username=username[:64]).exists()


@pytest.mark.usefixtures("orm")
async def test_a_new_account_hashes_its_password_and_is_audited() -> None:
    name = fresh_name()
    created = await staff.create_staff(
        name,
        PASSWORD,
        roles=["reviewer", "admin", "reviewer"],
        display_name=" 张审核 ",
        keyring=RING,
        actor=Actor("system", "cli"),
        hasher=FAST,
    )
    user = await StaffUser.get(username=name)
    assert (user.display_name, user.roles, user.active) == ("张审核", ["reviewer", "admin"], True)
    assert user.password_hash.startswith("$argon2id$")
    assert PASSWORD not in user.password_hash
    assert created.otp_uri is None
    assert user.totp_secret_sealed is None
    event = await AuditEvent.get(action="staff.create", target=f"staff:{name}")
    assert (event.actor_kind, event.actor_id) == ("system", "cli")
    assert event.details == {"roles": "reviewer,admin", "totp": False}


@pytest.mark.usefixtures("orm")
async def test_a_username_is_taken_once() -> None:
    name, _ = await new_staff()
    with pytest.raises(staff.UsernameTaken):
        await staff.create_staff(name, PASSWORD, roles=["admin"], keyring=RING, hasher=FAST)
    assert await StaffUser.filter(username=name).count() == 1


@pytest.mark.usefixtures("orm")
async def test_the_totp_secret_is_sealed_to_its_row() -> None:
    name, secret = await new_staff(totp=True)
    assert secret is not None
    user = await StaffUser.get(username=name)
    assert user.totp_secret_sealed is not None
    assert secret not in user.totp_secret_sealed
    opened = RING.open(
        user.totp_secret_sealed, table="staff_user", column="totp_secret", row_id=user.id
    )
    assert opened == secret
    uri = staff.otp_uri(name, secret)
    assert uri.startswith("otpauth://totp/")
    assert name in uri


# --------------------------------------------------------------------------- logging in


@pytest.mark.usefixtures("orm")
async def test_login_opens_a_staff_session(redis_client: Any, sessions: SessionStore) -> None:
    name, _ = await new_staff(roles=("reviewer", "hall_manager"))
    result = await login(name.upper(), redis=redis_client, sessions=sessions)
    assert result.token.startswith("staff_")
    assert result.expires_in == 1800
    assert result.user.roles == ["reviewer", "hall_manager"]
    assert result.user.last_login_at == T0
    session = await sessions.get(result.token, "staff")
    assert session is not None
    assert (session.kind, session.account_id) == ("staff", result.user.id)
    assert await sessions.get(result.token, "mp") is None
    event = await AuditEvent.get(action="staff.login", target=f"staff:{name}")
    assert (event.actor_kind, event.actor_id, event.outcome) == ("staff", str(result.user.id), "ok")
    assert event.request_id == "req-test"


@pytest.mark.usefixtures("orm")
async def test_a_wrong_password_is_refused_and_counted(
    redis_client: Any, sessions: SessionStore
) -> None:
    name, _ = await new_staff()
    with pytest.raises(staff.BadCredentials):
        await login(name, "wrong password!", redis=redis_client, sessions=sessions)
    assert (await StaffUser.get(username=name)).failed_logins == 1
    assert await logins_of(name) == [
        ("staff.create", "ok", ""),
        ("staff.login", "denied", "bad_password"),
    ]
    event = await AuditEvent.filter(target=f"staff:{name}", action="staff.login").first()
    assert event is not None
    assert event.actor_kind == "anonymous"


@pytest.mark.usefixtures("orm")
async def test_an_unknown_username_answers_like_a_wrong_password(
    redis_client: Any, sessions: SessionStore
) -> None:
    name, _ = await new_staff()
    with pytest.raises(staff.LoginRefused) as wrong:
        await login(name, "wrong password!", redis=redis_client, sessions=sessions)
    ghost = fresh_name()
    with pytest.raises(staff.LoginRefused) as unknown:
        await login(ghost, "wrong password!", redis=redis_client, sessions=sessions)
    assert type(unknown.value) is type(wrong.value)
    assert (unknown.value.code, unknown.value.message) == (wrong.value.code, wrong.value.message)
    # Audited without the typed name: people type passwords into the username box.
    event = await AuditEvent.filter(action="staff.login").order_by("-id").first()
    assert event is not None
    assert (event.target, event.details) == (None, {"reason": "unknown_user"})
    assert ghost not in json.dumps(event.details)


@pytest.mark.usefixtures("orm")
async def test_an_unknown_username_is_locked_after_five_tries_too(
    redis_client: Any, sessions: SessionStore
) -> None:
    ghost = fresh_name()
    for _ in range(staff.LOCKOUT_AFTER):
        with pytest.raises(staff.BadCredentials):
            await login(ghost, redis=redis_client, sessions=sessions)
    with pytest.raises(staff.AccountLocked) as caught:
        await login(ghost, redis=redis_client, sessions=sessions)
    assert 0 < caught.value.retry_after <= staff.LOCKOUT_SECONDS


@pytest.mark.usefixtures("orm")
async def test_unknown_usernames_cost_an_argon2_verification(
    redis_client: Any, sessions: SessionStore
) -> None:
    verified: list[str] = []

    class Spy(PasswordHasher):
        def verify(self, hash: str | bytes, password: str | bytes) -> Literal[True]:
            verified.append(str(hash))
            return super().verify(hash, password)

    spy = Spy(time_cost=1, memory_cost=8, parallelism=1)
    name, _ = await new_staff()
    with pytest.raises(staff.BadCredentials):
        await login(name, "wrong password!", redis=redis_client, sessions=sessions, hasher=spy)
    with pytest.raises(staff.BadCredentials):
        await login(fresh_name(), "wrong!", redis=redis_client, sessions=sessions, hasher=spy)
    # One verification each, with the same parameters: the same cost, known name or not.
    assert len(verified) == 2
    assert all(h.startswith("$argon2id$v=19$m=8,t=1,p=1$") for h in verified)


@pytest.mark.usefixtures("orm")
async def test_an_inactive_account_cannot_log_in(redis_client: Any, sessions: SessionStore) -> None:
    name, _ = await new_staff()
    await StaffUser.filter(username=name).update(active=False)
    with pytest.raises(staff.AccountInactive):
        await login(name, redis=redis_client, sessions=sessions)
    # The inactive state shows only to whoever knows the password.
    with pytest.raises(staff.BadCredentials):
        await login(name, "wrong password!", redis=redis_client, sessions=sessions)
    reasons = [r for a, _, r in await logins_of(name) if a == "staff.login"]
    assert reasons == ["inactive", "bad_password"]


@pytest.mark.usefixtures("orm")
async def test_login_rehashes_when_the_parameters_changed(
    redis_client: Any, sessions: SessionStore
) -> None:
    name, _ = await new_staff()
    old_hash = (await StaffUser.get(username=name)).password_hash
    stronger = PasswordHasher(time_cost=2, memory_cost=16, parallelism=1)
    await login(name, redis=redis_client, sessions=sessions, hasher=stronger)
    new_hash = (await StaffUser.get(username=name)).password_hash
    assert new_hash != old_hash
    assert new_hash.startswith("$argon2id$v=19$m=16,t=2,p=1$")
    assert not stronger.check_needs_rehash(new_hash)
    # And the same password still opens it under the new parameters.
    await login(name, redis=redis_client, sessions=sessions, hasher=stronger)
    assert (await StaffUser.get(username=name)).password_hash == new_hash


# --------------------------------------------------------------------------- lockout


async def fail(name: str, times: int, redis: Any, sessions: SessionStore, now: datetime) -> None:
    for _ in range(times):
        with pytest.raises(staff.BadCredentials):
            await login(name, "wrong password!", redis=redis, sessions=sessions, now=now)


@pytest.mark.usefixtures("orm")
async def test_five_failures_lock_the_account_for_fifteen_minutes(
    redis_client: Any, sessions: SessionStore
) -> None:
    name, _ = await new_staff()
    await fail(name, 5, redis_client, sessions, T0)
    user = await StaffUser.get(username=name)
    assert user.locked_until == T0 + timedelta(minutes=15)
    # Locked: even the right password fails, with its own answer.
    later = T0 + timedelta(minutes=10)
    with pytest.raises(staff.AccountLocked) as caught:
        await login(name, redis=redis_client, sessions=sessions, now=later)
    assert caught.value.retry_after == 5 * 60
    assert caught.value.code == "ACCOUNT_LOCKED"
    assert await logins_of(name) == [
        ("staff.create", "ok", ""),
        *[("staff.login", "denied", "bad_password")] * 5,
        ("staff.locked", "ok", ""),
        ("staff.login", "denied", "locked"),
    ]
    # Until the lock runs out.
    with pytest.raises(staff.AccountLocked):
        await login(name, redis=redis_client, sessions=sessions, now=T0 + timedelta(seconds=899))
    result = await login(
        name, redis=redis_client, sessions=sessions, now=T0 + timedelta(minutes=15)
    )
    assert (result.user.failed_logins, result.user.locked_until) == (0, None)


@pytest.mark.usefixtures("orm")
async def test_a_lock_holds_whatever_zone_the_clock_is_given_in(
    redis_client: Any, sessions: SessionStore
) -> None:
    # SQLite compares datetimes as text: a lock written from a UTC `now` and checked against a
    # Shanghai one (or the other way) must still mean the same instant.
    name, _ = await new_staff()
    await fail(name, 5, redis_client, sessions, T0)
    shanghai = ZoneInfo("Asia/Shanghai")
    with pytest.raises(staff.AccountLocked) as caught:
        await login(
            name,
            redis=redis_client,
            sessions=sessions,
            now=(T0 + timedelta(minutes=10)).astimezone(shanghai),
        )
    assert caught.value.retry_after == 5 * 60
    await login(
        name,
        redis=redis_client,
        sessions=sessions,
        now=(T0 + timedelta(minutes=15)).astimezone(shanghai),
    )
    other, _ = await new_staff()
    await fail(other, 5, redis_client, sessions, T0.astimezone(shanghai))
    with pytest.raises(staff.AccountLocked):
        await login(other, redis=redis_client, sessions=sessions, now=T0 + timedelta(minutes=14))
    await login(other, redis=redis_client, sessions=sessions, now=T0 + timedelta(minutes=15))


@pytest.mark.usefixtures("orm")
async def test_after_a_lock_runs_out_five_fresh_tries_remain(
    redis_client: Any, sessions: SessionStore
) -> None:
    name, _ = await new_staff()
    await fail(name, 5, redis_client, sessions, T0)
    after = T0 + timedelta(minutes=16)
    await fail(name, 4, redis_client, sessions, after)
    await fail(name, 1, redis_client, sessions, after)
    with pytest.raises(staff.AccountLocked):
        await login(name, redis=redis_client, sessions=sessions, now=after)
    assert [a for a, _, _ in await logins_of(name)].count("staff.locked") == 2


@pytest.mark.usefixtures("orm")
async def test_a_success_starts_the_count_again(redis_client: Any, sessions: SessionStore) -> None:
    name, _ = await new_staff()
    await fail(name, 4, redis_client, sessions, T0)
    await login(name, redis=redis_client, sessions=sessions)
    await fail(name, 4, redis_client, sessions, T0)
    await login(name, redis=redis_client, sessions=sessions)


@pytest.mark.usefixtures("orm")
async def test_parallel_attempts_get_exactly_five_tries_between_them(
    redis_client: Any, sessions: SessionStore
) -> None:
    name, _ = await new_staff()

    async def attempt() -> str:
        try:
            await login(name, "wrong password!", redis=redis_client, sessions=sessions)
        except staff.LoginRefused as exc:
            return exc.code
        return "OK"

    codes = await asyncio.gather(*(attempt() for _ in range(16)))
    assert codes.count("INVALID_CREDENTIALS") == 5
    assert codes.count("ACCOUNT_LOCKED") == 11
    assert [a for a, _, _ in await logins_of(name)].count("staff.locked") == 1


@pytest.mark.usefixtures("orm")
async def test_tries_claimed_but_never_finished_still_end_in_a_lock(
    redis_client: Any, sessions: SessionStore
) -> None:
    # Five attempts claimed their tries and their worker died before answering.
    name, _ = await new_staff()
    await StaffUser.filter(username=name).update(failed_logins=5)
    with pytest.raises(staff.AccountLocked) as caught:
        await login(name, redis=redis_client, sessions=sessions)
    assert caught.value.retry_after == staff.LOCKOUT_SECONDS
    await login(name, redis=redis_client, sessions=sessions, now=T0 + timedelta(minutes=15))


@pytest.mark.usefixtures("orm")
async def test_reset_password_and_unlock_clear_the_lockout(
    redis_client: Any, sessions: SessionStore
) -> None:
    name, _ = await new_staff()
    await fail(name, 5, redis_client, sessions, T0)
    await staff.unlock(name)
    await login(name, redis=redis_client, sessions=sessions)
    await fail(name, 5, redis_client, sessions, T0)
    await staff.set_password(name, "a brand new secret", hasher=FAST)
    with pytest.raises(staff.BadCredentials):
        await login(name, redis=redis_client, sessions=sessions)
    await login(name, "a brand new secret", redis=redis_client, sessions=sessions)
    actions = [a for a, _, _ in await logins_of(name)]
    assert "staff.unlock" in actions
    assert "staff.password_reset" in actions
    with pytest.raises(staff.InvalidStaff):
        await staff.set_password(name, "short", hasher=FAST)
    with pytest.raises(staff.StaffNotFound):
        await staff.unlock(fresh_name())


# --------------------------------------------------------------------------- TOTP


@pytest.mark.usefixtures("orm")
async def test_totp_required_missing_wrong_and_right(
    redis_client: Any, sessions: SessionStore
) -> None:
    name, secret = await new_staff(totp=True)
    assert secret is not None
    totp = pyotp.TOTP(secret)
    with pytest.raises(staff.OtpRequired):
        await login(name, redis=redis_client, sessions=sessions)
    # Asking for the code is no failure.
    assert (await StaffUser.get(username=name)).failed_logins == 0
    wrong = f"{(int(totp.at(T0)) + 1) % 10**6:06d}"
    with pytest.raises(staff.BadOtp):
        await login(name, otp=wrong, redis=redis_client, sessions=sessions)
    assert (await StaffUser.get(username=name)).failed_logins == 1
    # A wrong password is the password's failure, whatever code comes with it.
    with pytest.raises(staff.BadCredentials):
        await login(name, "wrong password!", totp.at(T0), redis=redis_client, sessions=sessions)
    result = await login(name, otp=totp.at(T0), redis=redis_client, sessions=sessions)
    assert result.user.failed_logins == 0
    reasons = [r for a, _, r in await logins_of(name) if a == "staff.login"]
    assert reasons == ["otp_required", "bad_otp", "bad_password", ""]


@pytest.mark.usefixtures("orm")
async def test_a_totp_code_works_once(redis_client: Any, sessions: SessionStore) -> None:
    name, secret = await new_staff(totp=True)
    assert secret is not None
    code = pyotp.TOTP(secret).at(T0)
    await login(name, otp=code, redis=redis_client, sessions=sessions)
    with pytest.raises(staff.BadOtp):
        await login(name, otp=code, redis=redis_client, sessions=sessions)
    # Still within its window, on any worker: the memory is in Redis.
    with pytest.raises(staff.BadOtp):
        await login(
            name, otp=code, redis=redis_client, sessions=sessions, now=T0 + timedelta(seconds=30)
        )
    assert await redis_client.keys(f"suban:staff-otp:*:{code}")


@pytest.mark.usefixtures("orm")
async def test_a_totp_code_is_accepted_one_step_either_side(
    redis_client: Any, sessions: SessionStore
) -> None:
    name, secret = await new_staff(totp=True)
    assert secret is not None
    totp = pyotp.TOTP(secret)
    step = timedelta(seconds=30)
    await login(name, otp=totp.at(T0 - step), redis=redis_client, sessions=sessions)
    await login(name, otp=totp.at(T0 + step), redis=redis_client, sessions=sessions)
    too_old = totp.at(T0 - 2 * step)
    if too_old not in (totp.at(T0 - step), totp.at(T0), totp.at(T0 + step)):
        with pytest.raises(staff.BadOtp):
            await login(name, otp=too_old, redis=redis_client, sessions=sessions)


@pytest.mark.usefixtures("orm")
async def test_asking_for_the_code_does_not_reset_code_guessing(
    redis_client: Any, sessions: SessionStore
) -> None:
    name, secret = await new_staff(totp=True)
    assert secret is not None
    wrong = f"{(int(pyotp.TOTP(secret).at(T0)) + 1) % 10**6:06d}"
    for _ in range(4):
        with pytest.raises(staff.BadOtp):
            await login(name, otp=wrong, redis=redis_client, sessions=sessions)
        with pytest.raises(staff.OtpRequired):
            await login(name, redis=redis_client, sessions=sessions)
    with pytest.raises(staff.BadOtp):
        await login(name, otp=wrong, redis=redis_client, sessions=sessions)
    with pytest.raises(staff.AccountLocked):
        await login(name, redis=redis_client, sessions=sessions)


# --------------------------------------------------------------------------- the audit trail


@pytest.mark.usefixtures("orm")
async def test_no_password_or_code_reaches_the_audit_trail(
    redis_client: Any, sessions: SessionStore
) -> None:
    name, secret = await new_staff(totp=True)
    assert secret is not None
    code = pyotp.TOTP(secret).at(T0)
    wrong = f"{(int(code) + 1) % 10**6:06d}"
    with pytest.raises(staff.BadCredentials):
        await login(name, "not the password", redis=redis_client, sessions=sessions)
    with pytest.raises(staff.BadOtp):
        await login(name, otp=wrong, redis=redis_client, sessions=sessions)
    await login(name, otp=code, redis=redis_client, sessions=sessions)
    with pytest.raises(staff.BadCredentials):
        await login("secret-typed-as-username", redis=redis_client, sessions=sessions)
    rows = await AuditEvent.all().values()
    dumped = json.dumps(rows, default=str)
    for secret_text in (PASSWORD, "not the password", code, wrong, secret, "secret-typed"):
        assert secret_text not in dumped
