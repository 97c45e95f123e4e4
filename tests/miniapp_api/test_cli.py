"""The ``suban`` console script, run as an operator would run it."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from tests.conftest import free_port, run_cli


def test_check_config_fails_fast_with_one_line_per_bad_value(tmp_path: Path) -> None:
    done = run_cli(
        "check-config",
        env={"SUBAN_VAR_DIR": str(tmp_path), "SUBAN_PORT": "abc", "SUBAN_WORKERS": "many"},
    )
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        "suban: SUBAN_PORT=abc: must be a whole number from 1 to 65535",
        "suban: SUBAN_WORKERS=many: must be a whole number from 1 to 64",
    ]
    assert "Traceback" not in done.stderr


def test_serve_refuses_to_start_when_dependencies_are_unreachable(tmp_path: Path) -> None:
    port = free_port()
    done = run_cli(
        "serve",
        env={
            "SUBAN_VAR_DIR": str(tmp_path),
            "SUBAN_DATABASE_URL": f"postgres://postgres@127.0.0.1:{port}/x",
            "SUBAN_REDIS_URL": f"redis://127.0.0.1:{port}/0",
        },
    )
    assert done.returncode == 2
    lines = done.stderr.splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("suban: SUBAN_DATABASE_URL: the database does not answer")
    assert lines[1].startswith("suban: SUBAN_REDIS_URL: Redis does not answer")


@pytest.mark.parametrize("command", ["migrate", "demo"])
def test_database_commands_say_one_line_when_the_database_is_unreachable(
    tmp_path: Path, command: str
) -> None:
    done = run_cli(
        command,
        env={
            "SUBAN_VAR_DIR": str(tmp_path),
            "SUBAN_DATABASE_URL": f"postgres://u:pw@127.0.0.1:{free_port()}/db",
        },
    )
    assert done.returncode == 2
    assert len(done.stderr.splitlines()) == 1
    assert done.stderr.startswith("suban: SUBAN_DATABASE_URL: the database does not answer")


def test_check_config_reports_ok_on_the_embedded_default(tmp_path: Path) -> None:
    db = tmp_path / "x.sqlite3"
    done = run_cli(
        "check-config",
        env={"SUBAN_VAR_DIR": str(tmp_path), "SUBAN_DATABASE_URL": f"sqlite://{db}"},
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("ok: env=dev database=sqlite redis=embedded simulator=on")


def test_worker_needs_a_real_redis(tmp_path: Path) -> None:
    done = run_cli("worker", env={"SUBAN_VAR_DIR": str(tmp_path)})
    assert done.returncode == 2
    assert "SUBAN_REDIS_URL=memory://" in done.stderr


def test_demo_data_is_refused_in_production(tmp_path: Path) -> None:
    key = base64.b64encode(b"k" * 32).decode()
    done = run_cli(
        "demo",
        env={
            "SUBAN_VAR_DIR": str(tmp_path),
            "SUBAN_ENV": "production",
            "SUBAN_DATABASE_URL": "postgresql://u:p@127.0.0.1:9/suban",
            "SUBAN_REDIS_URL": "redis://127.0.0.1:9/0",
            "SUBAN_PII_KEYS": f"v1:{key}",
            "SUBAN_WECHAT_APPID": "wx123",
            "SUBAN_WECHAT_SECRET": "s",
            "SUBAN_WECOM_CORP_ID": "ww123",
            "SUBAN_WECOM_SECRET": "s",
            "SUBAN_WECOM_AGENT_ID": "1000005",
            "SUBAN_WECOM_TOKEN": "t",
            "SUBAN_WECOM_AES_KEY": "a" * 43,
        },
    )
    assert done.returncode == 2
    assert (
        done.stderr.strip() == "suban: SUBAN_ENV=production: the demo data is for development only"
    )
