"""``suban staff add / reset-password / unlock`` run as an operator would, checked by logging in
over HTTP; the demo reviewer loaded again keeps its password."""

from __future__ import annotations

import asyncio
import subprocess
import uuid
from collections.abc import Callable
from pathlib import Path

import pyotp
import pytest

from auth.models import AuditEvent, StaffUser
from miniapp_api.cli import CommandFailed, read_staff_password
from tests.conftest import BACKEND, REAL_REDIS_URL, TEST_PII_KEYS_ENV, LiveServer, run_cli

PASSWORD = "cli password 123"


def env_for(database_url: str, var_dir: Path, **extra: str) -> dict[str, str]:
    return {
        "SUBAN_DATABASE_URL": database_url,
        "SUBAN_VAR_DIR": str(var_dir),
        "SUBAN_PII_KEYS": TEST_PII_KEYS_ENV,
        "SUBAN_STAFF_PASSWORD": PASSWORD,
        **extra,
    }


async def suban(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    # In a thread: the app under test serves from this event loop meanwhile.
    return await asyncio.to_thread(run_cli, *args, env=env)


def fresh_name() -> str:
    return f"c{uuid.uuid4().hex[:10]}"


async def login(
    live: LiveServer, name: str, password: str = PASSWORD, otp: str | None = None
) -> int:
    body = {"username": name, "password": password} | ({"otp": otp} if otp else {})
    r = await live.http.post("/api/v1/staff/login", json=body)
    return r.status_code


async def test_add_creates_an_account_that_logs_in(
    live: LiveServer, database_url: str, tmp_path: Path
) -> None:
    name = fresh_name()
    done = await suban(
        env_for(database_url, tmp_path),
        *("staff", "add", name, "--role", "reviewer", "--role", "admin"),
        *("--display-name", "张三"),
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"staff {name} created, roles reviewer, admin\n"
    assert PASSWORD not in done.stdout + done.stderr
    r = await live.http.post("/api/v1/staff/login", json={"username": name, "password": PASSWORD})
    assert r.status_code == 200, r.text
    assert r.json()["roles"] == ["reviewer", "admin"]
    me = await live.http.get(
        "/api/v1/staff/me", headers={"Authorization": f"Bearer {r.json()['token']}"}
    )
    assert me.json()["display_name"] == "张三"
    event = await AuditEvent.get(action="staff.create", target=f"staff:{name}")
    assert (event.actor_kind, event.actor_id) == ("system", "cli")


async def test_add_with_totp_prints_the_uri_once(
    live: LiveServer, database_url: str, tmp_path: Path
) -> None:
    name = fresh_name()
    done = await suban(
        env_for(database_url, tmp_path), "staff", "add", name, "--role", "admin", "--totp"
    )
    assert done.returncode == 0, done.stderr
    uris = [line for line in done.stdout.splitlines() if line.startswith("otpauth://totp/")]
    assert len(uris) == 1
    totp = pyotp.parse_uri(uris[0])
    assert isinstance(totp, pyotp.TOTP)
    user = await StaffUser.get(username=name)
    assert user.totp_secret_sealed is not None
    assert totp.secret not in user.totp_secret_sealed
    assert await login(live, name) == 401
    assert await login(live, name, otp=totp.now()) == 200


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (["reviewer", "--role", "reviewer"], "suban: staff: username: reviewer is taken"),
        (
            ["{name}", "--role", "boss"],
            "suban: staff: roles: unknown role boss "
            "(known: reviewer, hall_manager, auditor, admin)",
        ),
        (["{name}"], "suban: staff: roles: at least one role is needed"),
        (
            ["Bad Name", "--role", "reviewer"],
            "suban: staff: username: must be 3-64 characters of a-z, 0-9, '_', '.', '-'",
        ),
    ],
)
def test_add_refuses_with_one_line(
    database_url: str, tmp_path: Path, args: list[str], line: str
) -> None:
    name = fresh_name()
    done = run_cli(
        "staff", "add", *(a.format(name=name) for a in args), env=env_for(database_url, tmp_path)
    )
    assert done.returncode == 2
    assert done.stderr.splitlines() == [line]
    assert done.stdout == ""


def test_a_short_password_is_refused_with_one_line(database_url: str, tmp_path: Path) -> None:
    env = env_for(database_url, tmp_path, SUBAN_STAFF_PASSWORD="short")
    for args in (["add", fresh_name(), "--role", "reviewer"], ["reset-password", "reviewer"]):
        done = run_cli("staff", *args, env=env)
        assert done.returncode == 2
        assert done.stderr.splitlines() == [
            "suban: staff: password: must be at least 10 characters"
        ]


def test_unknown_usernames_are_one_line(database_url: str, tmp_path: Path) -> None:
    for command in ("unlock", "reset-password"):
        done = run_cli("staff", command, "nobody-here", env=env_for(database_url, tmp_path))
        assert done.returncode == 2
        assert done.stderr.splitlines() == ["suban: staff: no staff user nobody-here"]


async def lock(live: LiveServer, name: str) -> None:
    for _ in range(5):
        assert await login(live, name, "not the password") == 401
    assert await login(live, name) == 429


async def test_unlock_clears_the_lockout(
    live: LiveServer, database_url: str, tmp_path: Path
) -> None:
    name = fresh_name()
    env = env_for(database_url, tmp_path)
    assert (await suban(env, "staff", "add", name, "--role", "reviewer")).returncode == 0
    await lock(live, name)
    done = await suban(env, "staff", "unlock", name)
    assert (done.returncode, done.stdout) == (0, f"staff {name}: unlocked\n")
    assert await login(live, name) == 200


async def test_reset_password_sets_it_clears_the_lockout_and_ends_sessions(
    live: LiveServer, database_url: str, tmp_path: Path
) -> None:
    name = fresh_name()
    # With a real Redis the CLI reaches the sessions the server keeps there.
    extra = {"SUBAN_REDIS_URL": REAL_REDIS_URL} if BACKEND == "postgres" else {}
    env = env_for(database_url, tmp_path, **extra)
    assert (await suban(env, "staff", "add", name, "--role", "reviewer")).returncode == 0
    r = await live.http.post("/api/v1/staff/login", json={"username": name, "password": PASSWORD})
    token = r.json()["token"]
    await lock(live, name)
    done = await suban(
        {**env, "SUBAN_STAFF_PASSWORD": "the new password"}, "staff", "reset-password", name
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"staff {name}: password set, lockout cleared; ")
    assert "the new password" not in done.stdout + done.stderr
    assert await login(live, name) == 401
    assert await login(live, name, "the new password") == 200
    if BACKEND == "postgres":
        assert "1 session(s) ended" in done.stdout
        me = await live.http.get("/api/v1/staff/me", headers={"Authorization": f"Bearer {token}"})
        assert me.status_code == 401


async def test_loading_the_demo_again_keeps_a_changed_password(
    live: LiveServer, database_url: str, tmp_path: Path
) -> None:
    env = env_for(database_url, tmp_path)
    reset = {**env, "SUBAN_STAFF_PASSWORD": "changed demo pw"}
    try:
        assert (await suban(reset, "staff", "reset-password", "reviewer")).returncode == 0
        done = await suban({**env, "SUBAN_DEMO_STAFF_PASSWORD": "yet another pw"}, "demo")
        assert done.returncode == 0, done.stderr
        assert "staff reviewer already there (password left as it is)" in done.stdout
        assert await StaffUser.filter(username="reviewer").count() == 1
        assert await login(live, "reviewer", "changed demo pw") == 200
    finally:
        back = {**env, "SUBAN_STAFF_PASSWORD": "suban-demo"}
        assert (await suban(back, "staff", "reset-password", "reviewer")).returncode == 0
    assert await login(live, "reviewer", "suban-demo") == 200


def test_a_short_demo_staff_password_is_a_settings_error(tmp_path: Path) -> None:
    done = run_cli(
        "check-config",
        env={"SUBAN_VAR_DIR": str(tmp_path), "SUBAN_DEMO_STAFF_PASSWORD": "short"},
    )
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        "suban: SUBAN_DEMO_STAFF_PASSWORD=<hidden>: must be at least 10 characters"
    ]


def prompts(*answers: str) -> tuple[list[str], Callable[[str], str]]:
    asked: list[str] = []
    replies = iter(answers)

    def prompt(text: str) -> str:
        asked.append(text)
        return next(replies)

    return asked, prompt


def test_the_password_comes_from_the_environment_before_any_prompt() -> None:
    asked, prompt = prompts()
    assert read_staff_password({"SUBAN_STAFF_PASSWORD": PASSWORD}, prompt) == PASSWORD
    assert asked == []


def test_the_password_is_asked_twice_and_must_match() -> None:
    asked, prompt = prompts(PASSWORD, PASSWORD)
    assert read_staff_password({}, prompt) == PASSWORD
    assert len(asked) == 2
    _, prompt = prompts(PASSWORD, PASSWORD + "x")
    with pytest.raises(CommandFailed, match="the two entries differ"):
        read_staff_password({}, prompt)

    def closed(text: str) -> str:
        raise EOFError

    with pytest.raises(CommandFailed, match="not given"):
        read_staff_password({}, closed)
