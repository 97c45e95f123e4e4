"""The database configuration: PostgreSQL connections go back to the pool without asyncpg's
reset query, and a connection released mid-transaction is still rolled back."""

from __future__ import annotations

import pytest
from tortoise import Tortoise, connections
from tortoise.transactions import in_transaction

from miniapp_api.database import NoResetConnection, tortoise_config
from tests.conftest import BACKEND


def test_postgres_connections_skip_the_reset_query_and_sqlite_stays_a_url() -> None:
    config = tortoise_config("postgresql://postgres@127.0.0.1:5432/suban")
    default = config["connections"]["default"]
    assert default["engine"] == "tortoise.backends.asyncpg"
    assert default["credentials"]["database"] == "suban"
    assert default["credentials"]["connection_class"] is NoResetConnection
    spelled = tortoise_config("asyncpg://postgres@127.0.0.1:5432/suban")["connections"]["default"]
    assert spelled["credentials"]["connection_class"] is NoResetConnection
    assert tortoise_config("sqlite://:memory:")["connections"]["default"] == "sqlite://:memory:"


class _Boom(Exception):
    pass


async def _fail_in_transaction() -> None:
    async with in_transaction() as conn:
        await conn.execute_query("SELECT pg_advisory_xact_lock(424242)")
        await conn.execute_query("SET LOCAL statement_timeout = 1234")
        raise _Boom


async def test_a_failed_transaction_leaves_no_trace_on_the_pooled_connections(
    database_url: str,
) -> None:
    if BACKEND != "postgres":
        pytest.skip("the asyncpg pool exists only on the PostgreSQL backend")
    await Tortoise.init(config=tortoise_config(database_url), _enable_global_fallback=True)
    try:
        client = connections.get("default")
        with pytest.raises(_Boom):
            await _fail_in_transaction()
        # Every pooled connection in turn: none is left inside that transaction, holding its
        # lock or its setting.
        for _ in range(8):
            _, rows = await client.execute_query(
                "SELECT current_setting('statement_timeout') AS t, "
                "(SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'"
                " AND objid = 424242) AS locks"
            )
            assert rows[0]["t"] != "1234ms"
            assert rows[0]["locks"] == 0
        # The trade made: a session-level SET outlives the release (asyncpg's RESET ALL would
        # have cleared it), which is why nothing in the service issues one.
        await client.execute_query("SET application_name = 'reset-probe'")
        _, rows = await client.execute_query("SELECT current_setting('application_name') AS a")
        assert rows[0]["a"] == "reset-probe"
        await client.execute_query("RESET application_name")
    finally:
        await Tortoise.close_connections()
