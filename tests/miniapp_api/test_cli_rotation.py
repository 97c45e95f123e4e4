"""``suban rotate-keys`` run as an operator would, against a private database of the backend under
test (rotating the shared one would put other tests' rows under a key their apps do not hold)."""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from tortoise import Tortoise

from auth.models import Person
from miniapp_api.cli import build_parser
from tests.auth.test_rotation import (
    KEYS,
    open_empty,
    opened,
    private_database,
    ring,
    seed,
    stored,
    versions,
)
from tests.conftest import TEST_PII_KEYS_ENV, run_cli

AES_V1, AES_V2 = KEYS["aes-256-gcm"]


def keys_env(*keys: tuple[str, bytes]) -> str:
    return ",".join(f"{v}:{base64.b64encode(k).decode()}" for v, k in keys)


def _registered() -> bool:
    return any(
        isinstance(action, argparse._SubParsersAction) and "rotate-keys" in action.choices
        for action in build_parser()._actions
    )


def rotate_cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """The real ``suban rotate-keys`` once miniapp_api/cli.py registers it; until then the same
    command through ``python -m miniapp_api.cli_rotation``."""
    if _registered():
        return run_cli("rotate-keys", *args, env=env)
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("SUBAN_")}
    return subprocess.run(  # noqa: S603 - our own module, fixed arguments
        [sys.executable, "-m", "miniapp_api.cli_rotation", *args],
        env=inherited | {"SUBAN_PII_KEYS": TEST_PII_KEYS_ENV} | env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture(scope="module")
def rotation_db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with private_database(tmp_path_factory.mktemp("cli-rotation")) as url:
        yield url


@pytest.fixture
async def orm(rotation_db: str) -> AsyncIterator[str]:
    await open_empty(rotation_db)
    try:
        yield rotation_db
    finally:
        await Tortoise.close_connections()


def env_for(database_url: str, tmp_path: Path, *keys: tuple[str, bytes]) -> dict[str, str]:
    return {
        "SUBAN_DATABASE_URL": database_url,
        "SUBAN_VAR_DIR": str(tmp_path),
        "SUBAN_PII_KEYS": keys_env(*keys),
    }


async def run(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(rotate_cli, *args, env=env)


async def test_rotate_keys_reseals_everything_and_says_so(orm: str, tmp_path: Path) -> None:
    cells = await seed(ring("aes-256-gcm", "v1"))
    only_v1 = env_for(orm, tmp_path, AES_V1)

    done = await run(env=only_v1)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[-1] == (
        f"nothing to rotate: SUBAN_PII_KEYS holds one key (v1); "
        f"{len(cells)} of {len(cells)} sealed values checked are under it"
    )
    assert versions(await stored()) == {"v1"}

    dry = await run("--dry-run", env=env_for(orm, tmp_path, AES_V1, AES_V2))
    assert dry.returncode == 0, dry.stderr
    assert (
        dry.stdout.splitlines()[-1] == f"dry run: {len(cells)} values would be re-sealed under v2"
    )
    assert versions(await stored()) == {"v1"}

    both = env_for(orm, tmp_path, AES_V1, AES_V2)
    done = await run("--batch-size", "2", env=both)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    batch_lines = [ln for ln in lines if ln.startswith("batch ")]
    assert len(batch_lines) == 8  # 4 person rows, 3 of every other table, two rows a batch
    assert batch_lines[0].startswith("batch person ids ")
    assert batch_lines[0].endswith(
        "(2 rows): 6 re-sealed, 0 already current, 0 changed meanwhile, 0 broken"
    )
    assert "person.phone_sealed: 3 re-sealed, 0 already current, 0 changed meanwhile, 0 broken" in (
        lines
    )
    assert lines[-2] == (
        f"done: {len(cells)} re-sealed, 0 already current, 0 changed meanwhile, 0 broken "
        "(newest key v2)"
    )
    assert lines[-1] == "run again to confirm nothing is left under older keys"
    for plain in cells.values():
        assert plain not in done.stdout + done.stderr
    after = await stored()
    assert versions(after) == {"v2"}
    assert opened(ring("aes-256-gcm", "v2"), after) == cells

    again = await run(env=both)
    assert again.returncode == 0, again.stderr
    assert again.stdout.splitlines()[-1] == (
        "every value is under v2; keep v1 first in SUBAN_PII_KEYS: it derives the blind indexes"
    )


async def test_rotate_keys_lists_broken_values_by_place_only_and_exits_1(
    orm: str, tmp_path: Path
) -> None:
    cells = await seed(ring("sm4-gcm", "v1"), people=2)
    person = min(k[2] for k in cells if k[0] == "person")
    await Person.filter(id=person).update(phone_sealed="13812345678")

    sm4 = dict(KEYS["sm4-gcm"])
    env = env_for(orm, tmp_path, ("v1", sm4["v1"]), ("v2", sm4["v2"])) | {
        "SUBAN_PII_CIPHER": "sm4-gcm"
    }
    done = await run(env=env)
    assert done.returncode == 1
    assert f"broken: person.phone_sealed row {person}" in done.stdout.splitlines()
    assert done.stderr.splitlines() == [
        "suban: 1 sealed values do not open with SUBAN_PII_KEYS (listed above, left unchanged)"
    ]
    assert "13812345678" not in done.stdout + done.stderr
    after = await stored()
    assert after[("person", "phone_sealed", person)] == "13812345678"
    assert versions({k: v for k, v in after.items() if k[:2] != ("person", "phone_sealed")}) == {
        "v2"
    }


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (
            {"SUBAN_PII_KEYS": "v1:c2hvcnQ="},
            "suban: SUBAN_PII_KEYS=<hidden>: must be v1:<base64 of 32 bytes>,v2:<...> "
            "for aes-256-gcm",
        ),
        ({"SUBAN_DATABASE_URL": "mysql://x"}, "suban: SUBAN_DATABASE_URL="),
    ],
)
def test_rotate_keys_refuses_bad_settings_in_one_line(
    tmp_path: Path, extra: dict[str, str], expected: str
) -> None:
    done = rotate_cli(env={"SUBAN_VAR_DIR": str(tmp_path)} | extra)
    assert done.returncode == 2
    assert len(done.stderr.splitlines()) == 1
    assert done.stderr.startswith(expected)
    assert "Traceback" not in done.stderr


def test_rotate_keys_refuses_a_batch_size_below_one(tmp_path: Path) -> None:
    done = rotate_cli("--batch-size", "0", env={"SUBAN_VAR_DIR": str(tmp_path)})
    assert done.returncode == 2
    assert "--batch-size: must be a whole number from 1 to 100000" in done.stderr


def test_the_command_registers_on_suban_subcommands() -> None:
    from miniapp_api.cli_rotation import add_rotate_keys_parser, cmd_rotate_keys

    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    if "rotate-keys" not in sub.choices:
        add_rotate_keys_parser(sub)
    args = parser.parse_args(["rotate-keys", "--batch-size", "7", "--dry-run"])
    assert (args.func, args.batch_size, args.dry_run) == (cmd_rotate_keys, 7, True)
    assert parser.parse_args(["rotate-keys"]).batch_size == 500
