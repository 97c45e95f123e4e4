"""Shared fixtures.

The suite runs twice, in separate processes (tortoise cannot mix SQL dialects in one process):
``SUBAN_TEST_BACKEND=embedded`` (SQLite file + fakeredis) and ``SUBAN_TEST_BACKEND=postgres``
(a fresh PostgreSQL database + real Redis on its own db number).
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
import redis.asyncio as redis_asyncio
from fakeredis import FakeAsyncRedis
from sanic import Sanic

from miniapp_api.app import create_app
from miniapp_api.settings import PiiKey, Settings
from tests.processes import free_port, serving_in_loop

Sanic.test_mode = True

BACKEND = os.environ.get("SUBAN_TEST_BACKEND", "embedded")
REAL_REDIS_URL = os.environ.get("SUBAN_TEST_REDIS_URL", "redis://127.0.0.1:6379/14")
# One PII key for the CLI that loads the demo data and for the apps under test: blind indexes
# made by one must be found by the other.
TEST_PII_KEY = PiiKey("v1", b"k" * 32)
TEST_PII_KEYS_ENV = f"v1:{base64.b64encode(TEST_PII_KEY.key).decode()}"
POSTGRES_URL = os.environ.get(
    "SUBAN_TEST_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/postgres"
)


async def _real_redis_or_skip() -> redis_asyncio.Redis:
    client: redis_asyncio.Redis = redis_asyncio.from_url(REAL_REDIS_URL)
    try:
        await client.ping()
    except Exception as exc:  # pragma: no cover - depends on the machine
        await client.aclose()
        if BACKEND == "postgres":
            raise RuntimeError(f"real Redis at {REAL_REDIS_URL} does not answer: {exc}") from exc
        pytest.skip(f"real Redis at {REAL_REDIS_URL} does not answer")
    return client


@asynccontextmanager
async def _flushed(client: redis_asyncio.Redis) -> AsyncIterator[redis_asyncio.Redis]:
    await client.flushdb()
    try:
        yield client
    finally:
        await client.flushdb()
        await client.aclose()


@pytest.fixture
async def real_redis() -> AsyncIterator[redis_asyncio.Redis]:
    """Real Redis on its own db number, flushed before and after. Skipped on the embedded
    backend when no Redis answers; on the postgres backend a missing Redis is an error."""
    async with _flushed(await _real_redis_or_skip()) as client:
        yield client


@pytest.fixture
async def redis_client() -> AsyncIterator[redis_asyncio.Redis]:
    """The Redis of the backend under test: fakeredis on embedded, real Redis on postgres."""
    if BACKEND == "postgres":
        async with _flushed(await _real_redis_or_skip()) as client:
            yield client
    else:
        fake = FakeAsyncRedis()
        try:
            yield fake
        finally:
            await fake.aclose()


# --------------------------------------------------------------------------- database & app


def run_cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run the real ``suban`` console script, as an operator would. Unless ``env`` says
    otherwise it holds the suite's PII key, so what it writes into the shared test database
    (the demo registry's blind indexes) is what the apps under test find."""
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("SUBAN_")}
    full_env = inherited | {"SUBAN_PII_KEYS": TEST_PII_KEYS_ENV} | env
    return subprocess.run(  # noqa: S603 - our own console script, fixed arguments
        [str(Path(sys.executable).with_name("suban")), *args],
        env=full_env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


async def _pg_admin(sql: str) -> None:
    conn = await asyncpg.connect(POSTGRES_URL)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@contextmanager
def fresh_database(tmp_path: Path, extra_env: dict[str, str] | None = None) -> Iterator[str]:
    """A new database, migrated and loaded with the demo data by the real CLI, dropped after."""
    if BACKEND == "postgres":
        name = f"suban_test_{uuid.uuid4().hex[:12]}"
        asyncio.run(_pg_admin(f'CREATE DATABASE "{name}"'))
        url = POSTGRES_URL.rsplit("/", 1)[0] + f"/{name}"
    else:
        name = ""
        url = f"sqlite://{tmp_path / 'suban.sqlite3'}"
    try:
        var_dir = tmp_path / "var"
        var_dir.mkdir()
        env = {
            "SUBAN_DATABASE_URL": url,
            "SUBAN_VAR_DIR": str(var_dir),
            "SUBAN_PII_KEYS": TEST_PII_KEYS_ENV,
        } | (extra_env or {})
        for command in ("migrate", "demo"):
            done = run_cli(command, env=env)
            assert done.returncode == 0, f"suban {command} failed:\n{done.stderr}"
        yield url
    finally:
        if name:
            asyncio.run(_pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """This run's database, shared by its tests."""
    with fresh_database(tmp_path_factory.mktemp("db")) as url:
        yield url


@pytest.fixture
def own_database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A database of the test's own, for a test that counts everything a worker does: in the
    shared one, workers also take up what earlier tests left. No queue history: it is not
    needed there and loading it takes most of a minute."""
    with fresh_database(
        tmp_path_factory.mktemp("own-db"), {"SUBAN_DEMO_HISTORY_YEARS": "0"}
    ) as url:
        yield url


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    redis_url = REAL_REDIS_URL if BACKEND == "postgres" else "memory://"
    return Settings(
        database_url=database_url,
        redis_url=redis_url,
        port=free_port(),
        var_dir=tmp_path,
        pii_keys=(TEST_PII_KEY,),
    )


@dataclass
class LiveServer:
    app: Any
    base_url: str
    http: httpx.AsyncClient


_app_names = itertools.count()


@asynccontextmanager
async def serve_app(
    settings: Settings, prepare: Callable[[Any], None] | None = None
) -> AsyncIterator[LiveServer]:
    """The real app on a real loopback port, inside the test's event loop, so a test can speak
    HTTP to it and call domain functions against the same database. ``prepare`` may add routes
    (e.g. one that fails on purpose) before the server starts."""
    app = create_app(settings, name=f"suban_test_{next(_app_names)}", configure_logs=False)
    if prepare is not None:
        prepare(app)
    async with (
        serving_in_loop(app, settings.host, settings.port) as base_url,
        httpx.AsyncClient(base_url=base_url, timeout=10) as http,
    ):
        yield LiveServer(app=app, base_url=base_url, http=http)


@pytest.fixture
async def live(settings: Settings) -> AsyncIterator[LiveServer]:
    if BACKEND == "postgres":
        client = await _real_redis_or_skip()
        await client.flushdb()
        await client.aclose()
    async with serve_app(settings) as server:
        yield server
