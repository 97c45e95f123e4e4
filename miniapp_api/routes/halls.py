"""Public hall information (no login needed): the halls, their live status (HTTP and WebSocket)
and the short-lived links to camera snapshots."""

from __future__ import annotations

import asyncio
import logging
import re
import time
from typing import Any

from pydantic import BaseModel, Field
from redis.exceptions import RedisError
from sanic import Blueprint, HTTPResponse, Request
from sanic.exceptions import ServerError, WebsocketClosed
from sanic.response import json, raw
from sanic.server.websockets.impl import WebsocketImplProtocol
from websockets.exceptions import ConnectionClosed
from websockets.protocol import State

from auth import clock
from hall.halls import list_halls
from hall.live import ClientDropped, LiveBoard, LiveClient, refresh_status
from hall.snapshots import check_snapshot_url, read_snapshot
from miniapp_api.errors import ApiError, DependencyDown, NotFound
from miniapp_api.hall_setup import hall_board, live_config
from miniapp_api.openapi_docs import BINARY, carry_websocket_docs, doc
from miniapp_api.schemas_hall import HALL_LIST, HALL_STATUS_REF

log = logging.getLogger("suban.hall.live")
bp = Blueprint("halls", url_prefix="/halls")
bp.before_server_start(carry_websocket_docs)

_SNAPSHOT_NAME = re.compile(r"([0-9]{1,18})\.jpg")
_REDIS_DOWN = (RedisError, OSError, asyncio.TimeoutError)
# WebSocket close codes: 1013 "try again later" for a reader too slow to keep up; 4404 (the
# application range) for a hall that does not exist.
CLOSE_TOO_SLOW = 1013
CLOSE_UNKNOWN_HALL = 4404
CLOSE_GOING_AWAY = 1001
# A reader closed by the server (dropped, or the server stopping) gets its close frame after what
# is already buffered for it; one that does not read that far in this time is cut off.
CLOSE_FLUSH_SECONDS = 5.0


class SnapshotQuery(BaseModel):
    """The signed link's query, as the live status hands it out (hall/snapshots.py)."""

    exp: str = Field(pattern=r"^[0-9]{1,12}$", description="expiry, unix seconds")
    sig: str = Field(max_length=128, description="the link's signature")


@bp.get("", name="list")
@doc("The tax halls, their addresses, opening hours and categories", "hall", answer=HALL_LIST)
async def halls_index(request: Request) -> HTTPResponse:
    return json([h.as_dict() for h in await list_halls()])


def _json_text(text: str) -> HTTPResponse:
    return raw(
        text.encode(), content_type="application/json", headers={"Cache-Control": "no-store"}
    )


async def _envelope(request: Request, hall_id: str) -> dict[str, Any]:
    """The hall's status when this worker has none in memory: one Redis GET, or a first
    computation if nobody has published one yet. 404 unknown hall, 503 without Redis."""
    board = hall_board(request.app)
    if not await board.hall_exists(hall_id):
        raise NotFound("找不到该办税服务厅")
    try:
        envelope = await board.fetch(hall_id)
        if envelope is None:
            envelope = await refresh_status(
                hall_id,
                redis=request.app.ctx.redis,
                config=live_config(request.app.ctx.settings),
                now=clock.now(),
            )
    except _REDIS_DOWN as exc:
        raise DependencyDown("实时状态服务暂时不可用", ["redis"]) from exc
    if envelope is None:
        raise NotFound("找不到该办税服务厅")
    board.offer(envelope)
    return envelope


@bp.get("/<hall_id:str>/status", name="status")
@doc(
    "The hall's live status: open, windows, waiting, crowd level, cameras",
    "hall",
    answer=HALL_STATUS_REF,
)
async def hall_status(request: Request, hall_id: str) -> HTTPResponse:
    board = hall_board(request.app)
    now = time.time()
    # From memory while the subscription holds; a board cut off from Redis may be stale.
    if board.connected:
        text = board.rendered(hall_id, now)
        if text is not None:
            return _json_text(text)
    envelope = await _envelope(request, hall_id)
    return _json_text(board.render_envelope(envelope, now))


@bp.get("/<hall_id:str>/snapshots/<name:str>", name="snapshot")
@doc(
    "A camera snapshot through the signed link in the live status (expires in ≤ 5 min)",
    "hall",
    query=SnapshotQuery,
    answer=BINARY,
    media="image/jpeg",
    errors=(403,),
    description="`name` is `{snapshot_id}.jpg`. A missing, bad or expired link is 403 "
    "LINK_EXPIRED; a snapshot past its retention is 404.",
)
async def snapshot(request: Request, hall_id: str, name: str) -> HTTPResponse:
    match = _SNAPSHOT_NAME.fullmatch(name)
    if match is None:
        raise NotFound()
    snapshot_id = int(match.group(1))
    exp, sig = request.args.get("exp", ""), request.args.get("sig", "")
    board = hall_board(request.app)
    if not (
        exp.isdigit()
        and len(exp) <= 12
        and check_snapshot_url(board.url_key, hall_id, snapshot_id, int(exp), sig, time.time())
    ):
        raise ApiError(403, "LINK_EXPIRED", "链接无效或已过期")
    data = await read_snapshot(request.app.ctx.settings.snapshots_path, hall_id, snapshot_id)
    if data is None:
        raise NotFound("快照已过期删除")
    return raw(
        data,
        content_type="image/jpeg",
        headers={"Cache-Control": "private, max-age=60", "X-Content-Type-Options": "nosniff"},
    )


def close_now(ws: WebsocketImplProtocol, code: int, reason: str) -> None:
    """Close a WebSocket without awaiting anything (so without waiting on a reader that does not
    read): the close frame goes behind whatever is already buffered, then the connection is
    closed; a reader that has not taken all of it within ``CLOSE_FLUSH_SECONDS`` is cut off."""
    if ws.ws_proto.state is State.OPEN:
        ws.fail_connection(code, reason)
    io_proto = ws.io_proto
    transport = io_proto.transport if io_proto is not None else None
    if transport is not None and not transport.is_closing():
        transport.close()
        asyncio.get_running_loop().call_later(CLOSE_FLUSH_SECONDS, transport.abort)


async def _feed(
    ws: WebsocketImplProtocol, board: LiveBoard, client: LiveClient, envelope: dict[str, Any]
) -> None:
    """The only sender of a reader's WebSocket: the status now, then every newer one."""
    try:
        # Whatever is newest by now (the board may have moved on since the fetch).
        current = board.envelopes.get(client.hall_id, envelope)
        await ws.send(board.render_envelope(current, time.time()))
        sent_seq = int(current.get("seq", 0))
        while True:
            update = await client.next()
            if int(update.get("seq", 0)) <= sent_seq:
                continue
            sent_seq = int(update["seq"])
            await ws.send(board.render_envelope(update, time.time()))
    except ClientDropped:
        pass
    except (ConnectionClosed, WebsocketClosed, ServerError):
        # The reader left (or was closed while a send was under way): nothing more to do.
        pass


@bp.websocket("/<hall_id:str>/live", name="live")  # type: ignore[untyped-decorator]
@doc(
    "WebSocket: the hall's live status at connect and on every change",
    "hall",
    ok=101,
    answer=None,
    ok_description="Switching Protocols: from here on a WebSocket (see the description)",
    # Only the handshake is HTTP: an unknown hall or a down Redis close the socket instead.
    base_errors=(400,),
    errors=(426,),
    description="A WebSocket upgrade (`Connection: Upgrade`, `Upgrade: websocket`). The server "
    "sends text messages only, each one JSON object of `#/components/schemas/HallStatus` (the "
    "same as GET /api/v1/halls/{hall_id}/status answers): one at connect, then one on every "
    "change; what the client sends is ignored. Close codes: 4404 unknown hall, 1011 live status "
    "unavailable, 1013 the client read too slowly, 1001 the server is stopping. A plain GET "
    "is 426.",
)
async def hall_live(request: Request, ws: WebsocketImplProtocol, hall_id: str) -> None:
    """Sends the status at connect and on every change. Each reader has a bounded queue and its
    own sender task, the only thing that awaits its sends: the board only puts into queues, so a
    reader that does not read holds up nobody; one that falls a whole queue behind has its sender
    cancelled and is closed (1013). When the server stops, readers are closed with 1001."""
    board = hall_board(request.app)
    try:
        envelope = await _envelope(request, hall_id)
    except NotFound:
        await ws.close(CLOSE_UNKNOWN_HALL, "unknown hall")
        return
    except DependencyDown:
        await ws.close(1011, "live status unavailable")
        return

    sender: asyncio.Task[None] | None = None

    def close(code: int, reason: str) -> None:
        # Synchronous and never blocks: the board calls it while telling the other readers.
        if sender is not None:
            sender.cancel()
        close_now(ws, code, reason)

    client = board.subscribe(
        hall_id,
        on_drop=lambda: close(CLOSE_TOO_SLOW, "too slow"),
        on_close=lambda: close(CLOSE_GOING_AWAY, "server stopping"),
    )
    sender = asyncio.create_task(_feed(ws, board, client, envelope), name="suban-hall-live-send")
    try:
        await asyncio.wait({sender})
    except asyncio.CancelledError:
        # The connection is gone, or the server is stopping (Sanic cancels WebSocket handlers):
        # a reader still connected is told the server is going away, not a plain 1000.
        close(CLOSE_GOING_AWAY, "server stopping")
        raise
    finally:
        board.unsubscribe(client)
        sender.cancel()
    if client.dropped:
        log.info("live reader of hall %s dropped: too slow", hall_id)
