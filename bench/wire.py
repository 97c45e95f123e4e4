"""Counting TCP proxies for PostgreSQL and Redis: what a server under test sends over the wire.

Point a server's ``SUBAN_DATABASE_URL`` and ``SUBAN_REDIS_URL`` at the proxies' ports and every
byte is passed through unchanged while the client's side is read:

- PostgreSQL (frontend protocol v3): a round trip is a ``Sync`` or a simple ``Query`` (the client
  then waits for ReadyForQuery); each is labelled by its statement (``BEGIN``, ``INSERT
  submission``, asyncpg's ``pool reset`` on release...). A ``Parse`` names the statement, a later
  ``Bind`` uses it by name, so cached prepared statements are labelled too. The proxy answers an
  ``SSLRequest`` itself with "no", so the session stays readable.
- Redis (RESP): a round trip is what the client sends before the server next answers (a
  pipeline or MULTI..EXEC is one); the command names are counted too.

Used by bench/filing.py; counts are kept in a :class:`Counts` shared with the caller's thread.
"""

from __future__ import annotations

import asyncio
import collections
import struct
from typing import Any

SSL_REQUEST, GSSENC_REQUEST = 80877103, 80877104
_TABLE_WORDS = ("FROM", "INTO", "UPDATE", "JOIN")


class Counts:
    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.sql: collections.Counter[str] = collections.Counter()
        self.sequence: list[str] = []  # SQL round trips in order, "redis" for a Redis one
        self.redis_trips = 0
        self.redis_cmds: collections.Counter[str] = collections.Counter()

    def add_sql(self, kind: str) -> None:
        self.sql[kind] += 1
        self.sequence.append(kind)

    def summary(self, n: int) -> str:
        sql_total = sum(self.sql.values())
        return (
            f"{sql_total / n:.1f} SQL round trips ("
            + ", ".join(f"{k} {v / n:g}" for k, v in self.sql.most_common())
            + f"); {self.redis_trips / n:.1f} Redis round trips ("
            + ", ".join(f"{k} {v / n:g}" for k, v in self.redis_cmds.most_common())
            + ")"
        )


def statement_kind(query: str) -> str:
    q = " ".join(query.split())
    if q.startswith("SELECT pg_advisory_unlock_all()"):
        return "pool reset"
    words = q.replace('"', " ").replace("(", " ").split()
    if not words:
        return "empty"
    verb = words[0].upper().rstrip(";")
    table = next((words[i + 1] for i, w in enumerate(words[:-1]) if w.upper() in _TABLE_WORDS), "")
    return f"{verb} {table}".strip()


async def _pipe_back(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, on: Any) -> None:
    try:
        while data := await reader.read(65536):
            on()
            writer.write(data)
            await writer.drain()
    finally:
        writer.close()


async def _pg_session(
    counts: Counts, target: tuple[str, int], cr: asyncio.StreamReader, cw: asyncio.StreamWriter
) -> None:
    statements: dict[bytes, str] = {}
    pending: list[str] = []
    # Untyped start-up messages: answer SSL/GSS requests "no" here, pass the StartupMessage on.
    while True:
        head = await cr.readexactly(8)
        length, code = struct.unpack("!ii", head)
        rest = await cr.readexactly(length - 8)
        if code in (SSL_REQUEST, GSSENC_REQUEST):
            cw.write(b"N")
            await cw.drain()
            continue
        break
    sr, sw = await asyncio.open_connection(*target)
    sw.write(head + rest)
    back = asyncio.ensure_future(_pipe_back(sr, cw, lambda: None))
    try:
        while True:
            kind = await cr.readexactly(1)
            size = struct.unpack("!i", await cr.readexactly(4))[0]
            body = await cr.readexactly(size - 4)
            if kind == b"Q":
                counts.add_sql(statement_kind(body.rstrip(b"\0").decode(errors="replace")))
            elif kind == b"P":
                name, _, rest = body.partition(b"\0")
                query = statement_kind(rest.partition(b"\0")[0].decode(errors="replace"))
                statements[name] = query
                pending.append(f"prepare {query}")
            elif kind == b"B":
                _, _, rest = body.partition(b"\0")
                pending.append(statements.get(rest.partition(b"\0")[0], "?"))
            elif kind == b"S":
                counts.add_sql(pending[-1] if pending else "sync")
                pending.clear()
            sw.write(kind + struct.pack("!i", size) + body)
            await sw.drain()
    except asyncio.IncompleteReadError:
        pass
    finally:
        sw.close()
        await asyncio.gather(back, return_exceptions=True)


async def _redis_session(
    counts: Counts, target: tuple[str, int], cr: asyncio.StreamReader, cw: asyncio.StreamWriter
) -> None:
    sr, sw = await asyncio.open_connection(*target)
    state = {"answered": True}

    def answered() -> None:
        state["answered"] = True

    back = asyncio.ensure_future(_pipe_back(sr, cw, answered))
    buffer = b""
    try:
        while data := await cr.read(65536):
            if state["answered"]:
                counts.redis_trips += 1
                counts.sequence.append("redis")
                state["answered"] = False
            buffer += data
            buffer = _count_commands(buffer, counts.redis_cmds)
            sw.write(data)
            await sw.drain()
    finally:
        sw.close()
        await asyncio.gather(back, return_exceptions=True)


def _count_commands(buffer: bytes, names: collections.Counter[str]) -> bytes:
    """Count the complete RESP commands at the front of ``buffer``; return the incomplete rest."""
    while buffer.startswith(b"*"):
        pos = buffer.find(b"\r\n")
        if pos < 0:
            return buffer
        args, pos, first = int(buffer[1:pos]), pos + 2, None
        for _ in range(args):
            end = buffer.find(b"\r\n", pos)
            if end < 0:
                return buffer
            size = int(buffer[pos + 1 : end])
            if len(buffer) < end + 2 + size + 2:
                return buffer
            first = first if first is not None else buffer[end + 2 : end + 2 + size]
            pos = end + 2 + size + 2
        names[(first or b"?").decode(errors="replace").upper()] += 1
        buffer = buffer[pos:]
    return buffer


async def counting_proxies(
    counts: Counts, postgres: tuple[int, str, int], redis: tuple[int, str, int]
) -> list[asyncio.base_events.Server]:
    """Start both proxies: ``(listen port, target host, target port)`` each, on 127.0.0.1."""
    servers = []
    for session, (port, host, target_port) in ((_pg_session, postgres), (_redis_session, redis)):

        async def handle(
            cr: asyncio.StreamReader,
            cw: asyncio.StreamWriter,
            session: Any = session,
            target: tuple[str, int] = (host, target_port),
        ) -> None:
            try:
                await session(counts, target, cr, cw)
            except (ConnectionError, asyncio.IncompleteReadError):
                pass
            finally:
                cw.close()

        servers.append(await asyncio.start_server(handle, "127.0.0.1", port))
    return servers
