"""Tortoise ORM: one config for the app, the CLI and the migrations.

Every domain package lists its models here; the whole project is one Tortoise app, ``suban``,
with one migration set under ``migrations/`` that applies to SQLite and PostgreSQL alike.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import asyncpg  # type: ignore[import-untyped]  # no stubs
from sanic import Sanic
from tortoise import Tortoise, connections
from tortoise.backends.base.config_generator import expand_db_url
from tortoise.migrations.api import migrate as tortoise_migrate

from auth.models import SEALED_COLUMNS as AUTH_SEALED_COLUMNS
from forms.models import SEALED_COLUMNS as FORMS_SEALED_COLUMNS
from hall.models import SEALED_COLUMNS as HALL_SEALED_COLUMNS
from miniapp_api.settings import Settings

log = logging.getLogger("suban.database")

MODEL_MODULES = ["auth.models", "forms.models", "hall.models", "wecom.models"]
APP_LABEL = "suban"
# Every sealed column of every package, for `suban rotate-keys`.
SEALED_COLUMNS = AUTH_SEALED_COLUMNS + FORMS_SEALED_COLUMNS + HALL_SEALED_COLUMNS
TIMEZONE = "Asia/Shanghai"


def tortoise_url(database_url: str) -> str:
    """Tortoise spells PostgreSQL ``postgres://`` (asyncpg; the settings also take
    ``postgresql://`` and ``asyncpg://``) and wants SQLite's folder to exist."""
    for alias in ("postgresql://", "asyncpg://"):
        if database_url.startswith(alias):
            return "postgres://" + database_url.removeprefix(alias)
    if database_url.startswith("sqlite://"):
        path = database_url.removeprefix("sqlite://").split("?", 1)[0]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
    return database_url


class NoResetConnection(asyncpg.Connection):  # type: ignore[misc]
    """An asyncpg connection returned to the pool without its reset query.

    asyncpg runs ``SELECT pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *; RESET ALL`` on every
    release, and Tortoise takes a connection from the pool for each query outside a transaction:
    a round trip per query (4 of a first login's 10, bench/README.md "Login"). None of that
    state is ever left here: no session-level SET, LISTEN, advisory lock (the audit chain's is a
    transaction lock) or held cursor. An open transaction is still rolled back on release; asyncpg
    does that before asking for the reset query.
    """

    def get_reset_query(self) -> str:
        return ""


def _connection(database_url: str) -> str | dict[str, Any]:
    url = tortoise_url(database_url)
    if not url.startswith("postgres://"):
        return url
    config = expand_db_url(url)
    config["credentials"]["connection_class"] = NoResetConnection
    return config


def tortoise_config(database_url: str) -> dict[str, Any]:
    return {
        "connections": {"default": _connection(database_url)},
        "apps": {
            APP_LABEL: {
                "models": list(MODEL_MODULES),
                "migrations": "migrations",
                "default_connection": "default",
            }
        },
        "use_tz": True,
        "timezone": TIMEZONE,
    }


# For writing migrations (``suban makemigrations``): the model state only, no real database.
MIGRATION_CONFIG = tortoise_config("sqlite://:memory:")


async def apply_migrations(database_url: str) -> None:
    """Bring the schema up to the newest migration (what ``suban migrate`` runs)."""
    try:
        await tortoise_migrate(config=tortoise_config(database_url))
    finally:
        # An open aiosqlite connection keeps its thread, and the process, alive after a failure.
        await Tortoise.close_connections()


async def ping_database(timeout: float = 2.0) -> None:
    """Raise if the database does not answer ``SELECT 1`` in time."""
    await asyncio.wait_for(connections.get("default").execute_query("SELECT 1"), timeout)


def setup_database(app: Sanic[Any, Any], settings: Settings) -> None:
    config = tortoise_config(settings.database_url)

    @app.before_server_start
    async def open_database(app: Sanic[Any, Any]) -> None:
        # The global fallback gives every handler the context Tortoise.init made here; without it,
        # handlers fail with "No TortoiseContext is currently active" (tortoise 1.1).
        await Tortoise.init(config=config, _enable_global_fallback=True)

    @app.after_server_stop
    async def close_database(app: Sanic[Any, Any]) -> None:
        await Tortoise.close_connections()
