"""The live status of a hall: computed from heartbeats and the queue, kept in Redis, published on
Redis pub/sub, and held per worker by a :class:`LiveBoard` that serves readers from memory.

What goes through Redis is an envelope ``{"seq", "status", "snapshots", "seen"}``: ``status`` is
API.md's shape with ``snapshot_url`` still empty and ``online`` as of the computation; each worker
renders it (signing the snapshot URLs, re-judging ``online`` by ``seen``) when it is read.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, cast

import redis.asyncio as redis_asyncio
from tortoise.functions import Count

from auth import clock
from hall import wait
from hall.models import Device, Hall, HallCategory, QueueTicket
from hall.snapshots import URL_STEP_SECONDS, signed_snapshot_url, url_expiry

log = logging.getLogger("suban.hall.live")

CHANNEL = "suban:hall:status"
CAMERA_ONLINE_SECONDS = 60
# A window counts as open when it called a ticket this recently.
WINDOW_ACTIVE = timedelta(minutes=30)
LEVELS = ("较少", "适中", "较多")

Estimator = Callable[[str, list[wait.QueueLoad], datetime], Awaitable[dict[str, float | None]]]


@dataclass(frozen=True, slots=True)
class LiveConfig:
    """Thresholds of the crowd level: a measure at or above ``medium`` is 适中, at or above
    ``high`` 较多; the level is the higher of people counted and people waiting per window."""

    people_medium: int = 30
    people_high: int = 80
    waiting_per_window_medium: float = 3.0
    waiting_per_window_high: float = 8.0
    # Fixed number of open windows; 0: windows that called a ticket in the last 30 minutes.
    windows_open: int = 0


def status_key(hall_id: str) -> str:
    return f"suban:hall:{hall_id}:status"


def seq_key(hall_id: str) -> str:
    return f"suban:hall:{hall_id}:seq"


def cameras_key(hall_id: str) -> str:
    return f"suban:hall:{hall_id}:cameras"


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


async def record_heartbeat(
    redis: redis_asyncio.Redis,
    hall_id: str,
    camera_id: str,
    people_count: int,
    snapshot_id: int | None,
    now: datetime,
) -> None:
    """Remember a camera's latest heartbeat (a snapshot id stays until a newer one comes)."""
    key = cameras_key(hall_id)
    if snapshot_id is None:
        previous = await cast(Awaitable[bytes | None], redis.hget(key, camera_id))
        if previous:
            snapshot_id = json.loads(previous).get("snapshot_id")
    entry = {"seen": now.timestamp(), "people_count": people_count, "snapshot_id": snapshot_id}
    await cast(Awaitable[int], redis.hset(key, camera_id, json.dumps(entry)))


def is_open(open_hours: Iterable[dict[str, Any]], now: datetime) -> bool:
    """Whether ``now`` (moved to Asia/Shanghai) falls in one of the hall's opening periods."""
    local = clock.local(now)
    hhmm = local.strftime("%H:%M")
    for period in open_hours:
        weekdays = period.get("weekdays") or []
        start, end = str(period.get("start", "")), str(period.get("end", ""))
        if local.isoweekday() in weekdays and start <= hhmm < end:
            return True
    return False


def level_of(value: float, medium: float, high: float) -> int:
    return 2 if value >= high else 1 if value >= medium else 0


async def compute_status(
    hall_id: str,
    *,
    redis: redis_asyncio.Redis,
    config: LiveConfig,
    now: datetime,
    estimate: Estimator = wait.estimate_waits,
) -> dict[str, Any] | None:
    """The envelope of the hall's status now (without ``seq``); None for an unknown hall."""
    hall = await Hall.get_or_none(hall_id=hall_id)
    if hall is None:
        return None
    now = clock.local(now)
    categories = await HallCategory.filter(hall_id=hall_id).order_by("position")
    counts = (
        await QueueTicket.filter(hall_id=hall_id, service_date=now.date(), outcome="waiting")
        .group_by("category")
        .annotate(n=Count("id"))
        .values("category", "n")
    )
    waiting = {str(row["category"]): int(row["n"]) for row in counts}
    called = await QueueTicket.filter(
        hall_id=hall_id, called_at__gte=now - WINDOW_ACTIVE, window__isnull=False
    ).values_list("category", "window")
    windows_by_category: dict[str, set[str]] = {}
    for category, window in called:
        windows_by_category.setdefault(str(category), set()).add(str(window))
    all_windows = set().union(*windows_by_category.values()) if windows_by_category else set()
    windows_open = config.windows_open or len(all_windows)

    loads = [
        wait.QueueLoad(
            category=c.code,
            waiting=waiting.get(c.code, 0),
            open_windows=len(windows_by_category.get(c.code, ())) or config.windows_open,
        )
        for c in categories
    ]
    try:
        estimates = await estimate(hall_id, loads, now)
    except Exception:
        # The wait estimate is an extra: its failure must not take the live status down.
        log.exception("wait estimate of hall %s failed", hall_id)
        estimates = {}

    def minutes(category: str) -> int | None:
        value = estimates.get(category)
        return None if value is None else round(value)

    cameras_raw = await cast(Awaitable[dict[bytes, bytes]], redis.hgetall(cameras_key(hall_id)))
    beats = {_text(k): json.loads(v) for k, v in cameras_raw.items()}
    camera_ids = (
        await Device.filter(hall_id=hall_id, kind="camera", enabled=True)
        .order_by("device_id")
        .values_list("device_id", flat=True)
    )
    cameras: list[dict[str, Any]] = []
    snapshots: dict[str, int] = {}
    seen: dict[str, float] = {}
    people = 0
    for camera_id in camera_ids:
        beat = beats.get(str(camera_id))
        entry: dict[str, Any] = {
            "camera_id": camera_id,
            "online": False,
            "last_seen": None,
            "people_count": None,
            "snapshot_url": None,
        }
        if beat is not None:
            seen[str(camera_id)] = float(beat["seen"])
            entry["last_seen"] = datetime.fromtimestamp(beat["seen"], clock.ZONE).isoformat()
            entry["people_count"] = beat["people_count"]
            entry["online"] = now.timestamp() - beat["seen"] <= CAMERA_ONLINE_SECONDS
            if entry["online"]:
                people += int(beat["people_count"])
            if beat.get("snapshot_id") is not None:
                snapshots[str(camera_id)] = int(beat["snapshot_id"])
        cameras.append(entry)

    waiting_total = sum(waiting.get(c.code, 0) for c in categories)
    per_window = waiting_total / windows_open if windows_open else float(waiting_total)
    level = max(
        level_of(people, config.people_medium, config.people_high),
        level_of(per_window, config.waiting_per_window_medium, config.waiting_per_window_high),
    )
    status = {
        "hall_id": hall_id,
        "updated_at": now.isoformat(),
        "open": is_open(hall.open_hours, now),
        "windows_open": windows_open,
        "waiting_total": waiting_total,
        "crowd_level": LEVELS[level],
        "by_category": [
            {
                "category": c.code,
                "waiting": waiting.get(c.code, 0),
                "est_wait_minutes": minutes(c.code),
            }
            for c in categories
        ],
        "cameras": cameras,
    }
    return {"status": status, "snapshots": snapshots, "seen": seen}


async def refresh_status(
    hall_id: str,
    *,
    redis: redis_asyncio.Redis,
    config: LiveConfig,
    now: datetime,
    estimate: Estimator = wait.estimate_waits,
) -> dict[str, Any] | None:
    """Compute the hall's status, keep it in Redis and publish it to every worker; returns the
    envelope (None for an unknown hall). ``seq`` orders envelopes, so a worker never replaces a
    newer status with an older one that arrived late."""
    envelope = await compute_status(hall_id, redis=redis, config=config, now=now, estimate=estimate)
    if envelope is None:
        return None
    envelope["seq"] = int(await redis.incr(seq_key(hall_id)))
    payload = json.dumps(envelope, ensure_ascii=False)
    async with redis.pipeline(transaction=False) as pipe:
        pipe.set(status_key(hall_id), payload)
        pipe.publish(CHANNEL, payload)
        await pipe.execute()
    return envelope


async def all_hall_ids() -> list[str]:
    return [str(h) for h in await Hall.all().order_by("hall_id").values_list("hall_id", flat=True)]


def render(envelope: dict[str, Any], url_key: bytes, now: float) -> str:
    """The status as API.md shows it at ``now``: signed snapshot URLs, cameras online by their
    last heartbeat."""
    status = dict(envelope["status"])
    expires = url_expiry(now)
    snapshots: dict[str, int] = envelope.get("snapshots", {})
    seen: dict[str, float] = envelope.get("seen", {})
    cameras = []
    for camera in status.get("cameras", []):
        camera = dict(camera)
        cid = camera["camera_id"]
        if cid in seen:
            camera["online"] = now - seen[cid] <= CAMERA_ONLINE_SECONDS
        if cid in snapshots:
            camera["snapshot_url"] = signed_snapshot_url(
                url_key, status["hall_id"], snapshots[cid], expires
            )
        cameras.append(camera)
    status["cameras"] = cameras
    return json.dumps(status, ensure_ascii=False)


class ClientDropped(Exception):
    """The subscriber fell behind by a whole queue and was dropped."""


@dataclass(eq=False)
class LiveClient:
    """One reader of a hall's changes (a WebSocket). Its queue is bounded: when it is full the
    client is dropped, so one slow reader never holds up the board or the other readers."""

    hall_id: str
    queue: asyncio.Queue[dict[str, Any]]
    on_drop: Callable[[], None] | None = None
    # Called when the board lets go of all its readers (the server is stopping).
    on_close: Callable[[], None] | None = None
    dropped: bool = False

    async def next(self) -> dict[str, Any]:
        if self.dropped:
            raise ClientDropped
        envelope = await self.queue.get()
        if self.dropped:
            raise ClientDropped
        return envelope


@dataclass
class LiveBoard:
    """Per worker: the newest envelope of every hall, fed by one Redis subscription that
    reconnects by itself, and the local readers to tell about changes."""

    redis: redis_asyncio.Redis
    url_key: bytes = field(repr=False)
    client_queue_size: int = 8
    envelopes: dict[str, dict[str, Any]] = field(default_factory=dict)
    clients: dict[str, set[LiveClient]] = field(default_factory=dict)
    connected: bool = False
    dropped_total: int = 0
    _rendered: dict[str, tuple[int, int, str]] = field(default_factory=dict)
    _task: asyncio.Task[None] | None = None
    _stopping: bool = False
    _known: set[str] = field(default_factory=set)
    _known_checked: float = 0.0

    # ---------------------------------------------------------------- holding and rendering

    def offer(self, envelope: dict[str, Any]) -> bool:
        """Take an envelope if it is newer than what the board holds; tell the readers."""
        hall_id = str(envelope["status"]["hall_id"])
        current = self.envelopes.get(hall_id)
        if current is not None and int(current.get("seq", 0)) >= int(envelope.get("seq", 0)):
            return False
        self.envelopes[hall_id] = envelope
        self._known.add(hall_id)
        for client in list(self.clients.get(hall_id, ())):
            try:
                client.queue.put_nowait(envelope)
            except asyncio.QueueFull:
                self._drop(client)
        return True

    def _drop(self, client: LiveClient) -> None:
        client.dropped = True
        self.dropped_total += 1
        self.unsubscribe(client)
        if client.on_drop is not None:
            client.on_drop()

    def rendered(self, hall_id: str, now: float) -> str | None:
        """The hall's status as JSON text, rendered once per worker per URL step and change."""
        envelope = self.envelopes.get(hall_id)
        if envelope is None:
            return None
        seq, step = int(envelope.get("seq", 0)), int(now) // URL_STEP_SECONDS
        cached = self._rendered.get(hall_id)
        if cached is not None and cached[0] == seq and cached[1] == step:
            return cached[2]
        text = render(envelope, self.url_key, now)
        self._rendered[hall_id] = (seq, step, text)
        return text

    def render_envelope(self, envelope: dict[str, Any], now: float) -> str:
        hall_id = str(envelope["status"]["hall_id"])
        if self.envelopes.get(hall_id) is envelope:
            text = self.rendered(hall_id, now)
            if text is not None:
                return text
        return render(envelope, self.url_key, now)

    # ---------------------------------------------------------------- readers

    def subscribe(
        self,
        hall_id: str,
        on_drop: Callable[[], None] | None = None,
        on_close: Callable[[], None] | None = None,
    ) -> LiveClient:
        client = LiveClient(hall_id, asyncio.Queue(self.client_queue_size), on_drop, on_close)
        self.clients.setdefault(hall_id, set()).add(client)
        return client

    def unsubscribe(self, client: LiveClient) -> None:
        readers = self.clients.get(client.hall_id)
        if readers is not None:
            readers.discard(client)
            if not readers:
                del self.clients[client.hall_id]

    def close_all(self) -> int:
        """Let go of every reader, telling each through ``on_close`` (synchronous, never
        blocks); for a server that stops. Returns how many there were."""
        readers = [client for group in self.clients.values() for client in group]
        self.clients.clear()
        for client in readers:
            if client.on_close is not None:
                try:
                    client.on_close()
                except Exception:
                    log.exception("hall live: closing a reader failed")
        return len(readers)

    # ---------------------------------------------------------------- halls

    async def refresh_halls(self) -> None:
        self._known_checked = time.monotonic()
        self._known = set(await all_hall_ids()) | set(self.envelopes)

    async def hall_exists(self, hall_id: str) -> bool:
        """Whether the hall exists; the database is asked at most once per 10 s for a miss, so
        made-up hall ids do not each cost a query."""
        if hall_id in self._known:
            return True
        now = time.monotonic()
        if now - self._known_checked >= 10.0 or not self._known:
            await self.refresh_halls()
        return hall_id in self._known

    async def fetch(self, hall_id: str, timeout: float = 1.0) -> dict[str, Any] | None:
        """One Redis GET, for a worker that has nothing of this hall yet."""
        raw = await asyncio.wait_for(self.redis.get(status_key(hall_id)), timeout)
        if raw is None:
            return None
        envelope: dict[str, Any] = json.loads(raw)
        self.offer(envelope)
        return self.envelopes.get(hall_id) or envelope

    # ---------------------------------------------------------------- the subscription

    def start(self) -> None:
        self._stopping = False
        self._task = asyncio.create_task(self._run(), name="suban-hall-live")

    async def stop(self) -> None:
        self._stopping = True
        task, self._task = self._task, None
        if task is not None:
            # One cancel is not enough: redis-py's timed read (get_message's timeout) can take
            # a cancel for its own timeout and return None, and the loop would read on. The
            # flag ends the loop at its next turn; the repeated cancel wakes it from a read.
            while not task.done():
                task.cancel()
                await asyncio.wait({task}, timeout=0.5)
            with contextlib.suppress(asyncio.CancelledError, Exception):
                task.result()
        self.connected = False

    async def _run(self) -> None:
        backoff = 0.2
        while not self._stopping:
            try:
                await self._listen()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if self.connected:
                    log.warning(
                        "hall live subscription lost (%s); reconnecting", type(exc).__name__
                    )
                self.connected = False
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
            else:
                backoff = 0.2

    async def _listen(self) -> None:
        pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
        try:
            await pubsub.subscribe(CHANNEL)
            # Whatever changed while not subscribed: read every known hall's status once.
            await self._reload()
            self.connected = True
            while not self._stopping:
                # A timeout instead of a blocking read: the pool's socket timeout would turn a
                # quiet channel into an error.
                message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
                if message is None or message.get("type") != "message":
                    continue
                try:
                    envelope = json.loads(message["data"])
                except (ValueError, TypeError):
                    log.warning("hall live: unreadable message on %s", CHANNEL)
                    continue
                self.offer(envelope)
        finally:
            self.connected = False
            # Bounded: closing a subscription on a dead connection must not hold up a stop.
            with contextlib.suppress(Exception):
                await asyncio.wait_for(pubsub.aclose(), 2.0)  # type: ignore[no-untyped-call]

    async def _reload(self) -> None:
        hall_ids = sorted(self._known | set(self.envelopes))
        if not hall_ids:
            return
        raws = await self.redis.mget([status_key(h) for h in hall_ids])
        for raw in raws:
            if raw is not None:
                self.offer(json.loads(raw))
