"""The hall's per-worker pieces: the device secret cache, the live board (one Redis subscription
per worker feeding the status route and the WebSockets), and the hall's background jobs."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from sanic import Sanic

from auth import clock
from auth.pii import Keyring
from hall.device_auth import SecretCache
from hall.devices import load_device
from hall.live import LiveBoard, LiveConfig, all_hall_ids, refresh_status
from hall.snapshots import purge_snapshots
from miniapp_api.settings import Settings

log = logging.getLogger("suban.hall")

# Sanic pings every WebSocket this often and drops one whose pong does not come back in time:
# a phone that went into a tunnel stops costing a queue and a task within a minute.
WEBSOCKET_PING_INTERVAL = 20
WEBSOCKET_PING_TIMEOUT = 20
# Readers of the live status send nothing of substance; a small frame limit keeps it that way.
WEBSOCKET_MAX_SIZE = 4096


def live_config(settings: Settings) -> LiveConfig:
    return LiveConfig(
        people_medium=settings.hall_crowd_people_medium,
        people_high=settings.hall_crowd_people_high,
        waiting_per_window_medium=float(settings.hall_crowd_waiting_medium),
        waiting_per_window_high=float(settings.hall_crowd_waiting_high),
        windows_open=settings.hall_windows_open,
    )


def snapshot_url_key(keyring: Keyring) -> bytes:
    """The key of signed snapshot URLs: derived from the PII keyring's index key, so every worker
    and node has the same one without another secret to manage."""
    return bytes.fromhex(keyring.blind_index("snapshot urls", purpose="hall-snapshot-url-key"))


def hall_board(app: Sanic[Any, Any]) -> LiveBoard:
    board: LiveBoard = app.ctx.hall_board
    return board


def device_secrets(app: Sanic[Any, Any]) -> SecretCache:
    cache: SecretCache = app.ctx.device_secrets
    return cache


def setup_hall(app: Sanic[Any, Any], settings: Settings) -> None:
    app.config.WEBSOCKET_PING_INTERVAL = WEBSOCKET_PING_INTERVAL
    app.config.WEBSOCKET_PING_TIMEOUT = WEBSOCKET_PING_TIMEOUT
    app.config.WEBSOCKET_MAX_SIZE = WEBSOCKET_MAX_SIZE

    @app.before_server_start
    async def open_hall(app: Sanic[Any, Any]) -> None:
        keyring: Keyring = app.ctx.keyring

        async def load(device_id: str) -> Any:
            return await load_device(device_id, keyring=keyring)

        app.ctx.device_secrets = SecretCache(load)
        app.ctx.hall_board = LiveBoard(redis=app.ctx.redis, url_key=snapshot_url_key(keyring))

    @app.after_server_start
    async def start_hall_board(app: Sanic[Any, Any]) -> None:
        board = hall_board(app)
        try:
            await board.refresh_halls()
        except Exception as exc:
            # The service starts with its database down (``/readyz`` says so); the board learns
            # the halls when first asked.
            log.warning("hall live: halls not read at start (%s)", type(exc).__name__)
        board.start()

    @app.before_server_stop
    async def stop_hall_board(app: Sanic[Any, Any]) -> None:
        board = getattr(app.ctx, "hall_board", None)
        if board is not None:
            # First, before anything awaits: Sanic cancels the WebSocket handlers on stop and
            # would end them with a plain 1000; live readers are told 1001 (going away), so the
            # mini-program reconnects (to another worker or node) instead of giving up.
            closed = board.close_all()
            if closed:
                log.info("hall live: closed %d readers (server stopping)", closed)
            await board.stop()


async def refresh_hall_statuses(ctx: dict[str, Any]) -> None:
    """Recompute every hall's live status: a camera that stops sending goes offline, and the
    wait estimates move on, without any device traffic."""
    settings: Settings = ctx["settings"]
    config = live_config(settings)
    for hall_id in await all_hall_ids():
        await refresh_status(hall_id, redis=ctx["redis"], config=config, now=clock.now())


async def purge_camera_snapshots(ctx: dict[str, Any]) -> None:
    """Drop snapshots older than SUBAN_SNAPSHOT_RETENTION_HOURS, rows and files."""
    settings: Settings = ctx["settings"]
    cutoff = clock.now() - timedelta(hours=settings.snapshot_retention_hours)
    removed = await purge_snapshots(settings.snapshots_path, cutoff)
    if removed:
        log.info("purged %d camera snapshots older than %s", removed, cutoff.isoformat())
