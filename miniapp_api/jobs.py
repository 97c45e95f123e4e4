"""Background jobs: one registry, two runners.

Production runs ``suban worker`` processes on arq (Redis); the app enqueues through arq on its own
Redis pool. The embedded default has no separate worker: the same job functions run inside the
serving process, on the same schedule. A job is a plain ``async def job(ctx, **kwargs)`` taking
arq's context dict, which both runners fill with ``settings``, ``redis`` and ``wechat``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from arq import cron
from arq.connections import ArqRedis, RedisSettings
from arq.worker import run_worker
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from sanic import Sanic
from tortoise import Tortoise

from auth import audit, clock
from auth import retention as auth_retention
from auth.models import OutboxMessage
from auth.outbox import DeliveryFailed, Sender, deliver_due
from forms import retention as forms_retention
from forms.attachments import AttachmentStore
from hall import appointments as hall_appointments
from hall import comfort as hall_comfort
from hall import invitations as hall_invitations
from hall import reminders as hall_reminders
from miniapp_api.database import tortoise_config
from miniapp_api.hall_setup import purge_camera_snapshots, refresh_hall_statuses
from miniapp_api.logging_setup import configure_logging
from miniapp_api.settings import Settings
from miniapp_api.wechat_setup import WeChatClients, create_wechat_clients
from wechat.errors import WeChatError, WeChatUnavailable

log = logging.getLogger("suban.jobs")

JobContext = dict[str, Any]
JobFunction = Callable[..., Awaitable[Any]]
QUEUE_NAME = "suban:jobs"


async def warm_wechat_tokens(ctx: JobContext) -> None:
    """Keep both access tokens cached, so no user request waits for a token fetch after expiry.
    Goes through the single-flight store: with many workers still one fetch per token."""
    clients = ctx["wechat"]
    await clients.miniprogram.access_token()
    await clients.wecom.access_token()


# Errcodes after which sending the same message again cannot succeed, so the outbox gives it up at
# once. Everything else (network, 5xx, -1 busy, token trouble, rate limits, a wrong secret the
# operator will fix) is retried with backoff.
PERMANENT_ERRCODES: dict[int, str] = {
    40003: "invalid openid / userid",
    40037: "invalid template_id",
    41030: "invalid page",
    43101: "user refused the subscription",
    47003: "template data invalid",
    40008: "invalid message type",
    44004: "empty message content",
    81013: "all recipients invalid",
}


def wechat_sender(clients: WeChatClients) -> Sender:
    """The outbox's sender: channel ``subscribe`` as a mini-program subscribe message, ``wecom``
    as a WeCom app message; WeChat failures become :class:`DeliveryFailed` with only the errcode
    and exception type as reason (Tencent's errmsg is not ours to store)."""

    async def send(message: OutboxMessage) -> None:
        try:
            if message.channel == "subscribe":
                data = message.payload.get("data")
                page = message.payload.get("page")
                if not isinstance(data, dict):
                    raise DeliveryFailed("payload has no data", permanent=True)
                await clients.miniprogram.send_subscribe_message(
                    message.recipient,
                    message.template,
                    {str(k): str(v) for k, v in data.items()},
                    None if page is None else str(page),
                )
            elif message.channel == "wecom":
                result = await clients.wecom.send_message(
                    message.recipient, message.template, message.payload
                )
                if message.recipient in result.invalid_users:
                    # WeCom accepts the call and lists the recipients it could not reach.
                    raise DeliveryFailed("recipient invalid (invaliduser)", permanent=True)
            else:
                raise DeliveryFailed(f"unknown channel {message.channel[:16]!r}", permanent=True)
        except WeChatError as exc:
            reason = f"{type(exc).__name__} errcode {exc.errcode}"
            known = PERMANENT_ERRCODES.get(exc.errcode)
            if known is not None:
                raise DeliveryFailed(f"{reason}: {known}", permanent=True) from exc
            raise DeliveryFailed(reason, permanent=False) from exc
        except WeChatUnavailable as exc:
            # Method, path and failure kind only: the transport never puts the query in it.
            raise DeliveryFailed(f"WeChatUnavailable: {exc}", permanent=False) from exc

    return send


async def deliver_outbox(ctx: JobContext) -> None:
    """Send what the outbox holds that is due. Runs every minute and whenever a request nudges it
    after committing a change (``enqueue(app, "deliver_outbox")``); runs overlapping in one or
    several workers are safe, since each message is claimed by exactly one of them."""
    report = await deliver_due(wechat_sender(ctx["wechat"]), clock.now)
    if report.claimed:
        log.info(
            "outbox: %d claimed, %d delivered, %d retrying, %d failed, %d abandoned",
            report.claimed,
            report.delivered,
            report.retrying,
            report.failed,
            report.abandoned,
        )


async def remind_appointments(ctx: JobContext) -> None:
    """The subscribe message the day before an appointment; each written once however many
    workers run this at the same time (hall/reminders.py)."""
    settings: Settings = ctx["settings"]
    sent = await hall_reminders.send_reminders(
        template_id=settings.subscribe_template_reminder, now=clock.now()
    )
    if sent:
        log.info("appointments: %d reminders written to the outbox", sent)


async def sweep_appointments(ctx: JobContext) -> None:
    """Bookings never checked in become no-shows after their slot and the grace period;
    invitations past their time give their reserved place back."""
    settings: Settings = ctx["settings"]
    now = clock.now()
    grace = timedelta(minutes=settings.no_show_grace_minutes)
    no_shows = await hall_appointments.sweep_no_shows(now, grace=grace)
    expired = await hall_invitations.expire_due(now)
    if no_shows or expired:
        log.info("appointments: %d no-shows, %d invitations expired", no_shows, expired)


async def publish_comfort_indexes(ctx: JobContext) -> None:
    """Next month's comfort index for every hall: when it is missing, and again on the month's
    last day with that month's data in (hall/comfort.py, ``publish_due``). Hourly, so a missed
    run is made up within the hour; a no-op costs one query per hall."""
    settings: Settings = ctx["settings"]
    done = await hall_comfort.publish_due(clock.now(), settings.comfort_level_quantiles)
    for hall_id, month in done:
        log.info("comfort index of hall %s for %s published", hall_id, month)


async def purge_expired(ctx: JobContext) -> None:
    """Remove what is past its retention period (SUBAN_RETENTION_*): attachments of ended
    submissions, stale drafts, sent outbox messages, unfinished verifications. Safe on several
    workers at once (every delete is conditional); each run is audited with its counts only."""
    settings: Settings = ctx["settings"]
    now = clock.now()
    counts = await forms_retention.purge_expired(
        AttachmentStore(settings.attachments_path),
        now,
        attachment_days=settings.retention_attachment_days,
        draft_days=settings.retention_draft_days,
    )
    counts |= await auth_retention.purge_expired(
        now,
        outbox_days=settings.retention_outbox_days,
        verification_days=settings.retention_verification_days,
    )
    await audit.record("retention.purge", audit.SYSTEM, details=counts, at=now)
    if any(counts.values()):
        log.info("retention: %s", ", ".join(f"{k} {v}" for k, v in counts.items()))


@dataclass(frozen=True)
class Job:
    function: JobFunction
    # Run every this many minutes (aligned to the clock); None: only when enqueued.
    every_minutes: int | None = None

    @property
    def name(self) -> str:
        return self.function.__name__


# Later features add their jobs here (reminders, camera sweep, …).
JOBS: tuple[Job, ...] = (
    Job(warm_wechat_tokens, every_minutes=5),
    Job(deliver_outbox, every_minutes=1),
    Job(remind_appointments, every_minutes=15),
    Job(sweep_appointments, every_minutes=5),
    Job(refresh_hall_statuses, every_minutes=1),
    Job(purge_camera_snapshots, every_minutes=60),
    Job(publish_comfort_indexes, every_minutes=60),
    Job(purge_expired, every_minutes=60),
)


def job_named(name: str) -> Job:
    for job in JOBS:
        if job.name == name:
            return job
    raise KeyError(f"no job named {name!r}")


async def run_job(job: Job, ctx: JobContext, **kwargs: Any) -> None:
    """Run one job, logging (not raising) its failure: a failed job must not stop the runner."""
    started = time.perf_counter()
    try:
        await job.function(ctx, **kwargs)
    except Exception:
        log.exception("job %s failed", job.name)
    else:
        log.debug("job %s done in %.3fs", job.name, time.perf_counter() - started)


class InProcessRunner:
    """The embedded default's runner: periodic jobs on a timer, enqueued jobs as tasks."""

    def __init__(self, ctx: JobContext, jobs: tuple[Job, ...] = JOBS, tick: float = 30.0) -> None:
        self.ctx = ctx
        self.jobs = jobs
        self.tick = tick
        self._tasks: set[asyncio.Task[None]] = set()
        self._timer: asyncio.Task[None] | None = None
        self._last_run: dict[str, float] = {}

    def start(self) -> None:
        self._timer = asyncio.create_task(self._loop(), name="suban-jobs-timer")

    async def _loop(self) -> None:
        while True:
            now = time.monotonic()
            for job in self.jobs:
                if job.every_minutes is None:
                    continue
                last = self._last_run.get(job.name)
                if last is None or now - last >= job.every_minutes * 60:
                    self._last_run[job.name] = now
                    self.submit(job)
            await asyncio.sleep(self.tick)

    def submit(self, job: Job, **kwargs: Any) -> None:
        task = asyncio.create_task(run_job(job, self.ctx, **kwargs), name=f"job-{job.name}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def stop(self) -> None:
        tasks = [t for t in (self._timer, *self._tasks) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def enqueue(app: Sanic[Any, Any], name: str, **kwargs: Any) -> None:
    """Hand a job to whichever runner this deployment has. Never raises for Redis being away:
    every job enqueued here is a nudge for work already committed to PostgreSQL (the outbox),
    which the worker's periodic run picks up anyway, so a lost nudge must not fail a request
    whose change is already saved."""
    job = job_named(name)
    runner = getattr(app.ctx, "jobs", None)
    if isinstance(runner, InProcessRunner):
        runner.submit(job, **kwargs)
        return
    arq = ArqRedis(connection_pool=app.ctx.redis.connection_pool)
    try:
        await arq.enqueue_job(job.name, _queue_name=QUEUE_NAME, **kwargs)
    except (RedisConnectionError, RedisTimeoutError) as exc:
        log.warning("job %s not enqueued, Redis is away (%s)", job.name, type(exc).__name__)


def setup_jobs(app: Sanic[Any, Any], settings: Settings) -> None:
    if not settings.embedded_redis:
        # `suban worker` processes run them; the app only enqueues.
        return

    @app.after_server_start
    async def start_jobs(app: Sanic[Any, Any]) -> None:
        ctx: JobContext = {"settings": settings, "redis": app.ctx.redis, "wechat": app.ctx.wechat}
        app.ctx.jobs = InProcessRunner(ctx)
        app.ctx.jobs.start()

    @app.before_server_stop
    async def stop_jobs(app: Sanic[Any, Any]) -> None:
        runner = getattr(app.ctx, "jobs", None)
        if runner is not None:
            await runner.stop()


JOB_COMPLETION_WAIT = 25


def worker_settings(settings: Settings) -> type:
    """arq's WorkerSettings for ``suban worker``, built from our settings."""

    async def on_startup(ctx: JobContext) -> None:
        # arq put its own client (an ArqRedis, so jobs can enqueue follow-ups) in ctx["redis"]:
        # one pool per worker process, used for everything.
        configure_logging(settings.production, settings.log_level)
        ctx["settings"] = settings
        ctx["wechat"] = create_wechat_clients(settings, ctx["redis"])
        # Jobs read and write the database (the outbox). A worker process opens its own
        # connections; one running inside a process that already has them (a test next to its
        # app) uses those and leaves closing them to their owner.
        ctx["owns_database"] = not Tortoise.is_inited()
        if ctx["owns_database"]:
            await Tortoise.init(
                config=tortoise_config(settings.database_url), _enable_global_fallback=True
            )
        # Operators (and the fault tests) read this line as "the worker is taking jobs now".
        log.info("job worker ready on queue %s", QUEUE_NAME)

    async def on_shutdown(ctx: JobContext) -> None:
        await ctx["wechat"].aclose()
        if ctx.get("owns_database"):
            await Tortoise.close_connections()

    def arq_function(job: Job) -> JobFunction:
        async def call(ctx: JobContext, **kwargs: Any) -> None:
            await run_job(job, ctx, **kwargs)

        call.__name__ = call.__qualname__ = job.name
        return call

    functions = [arq_function(job) for job in JOBS]
    cron_jobs = [
        cron(
            arq_function(job),  # type: ignore[arg-type]  # arq types it as a Protocol of its own
            name=f"cron:{job.name}",
            minute=set(range(0, 60, job.every_minutes)),
            run_at_startup=True,
        )
        for job in JOBS
        if job.every_minutes is not None
    ]
    return type(
        "WorkerSettings",
        (),
        {
            "functions": functions,
            "cron_jobs": cron_jobs,
            "on_startup": on_startup,
            "on_shutdown": on_shutdown,
            "redis_settings": RedisSettings.from_dsn(settings.redis_url),
            "queue_name": QUEUE_NAME,
            "handle_signals": True,
            # On SIGTERM: take no new job, let the running ones finish for this long, then
            # cancel them; arq runs a cancelled job again, and every job here is safe to repeat
            # (outbox claims are fenced, reminders and publications are conditional UPDATEs).
            # Below the stop timeouts in deploy/ (systemd 60 s, Kubernetes 60 s).
            "job_completion_wait": JOB_COMPLETION_WAIT,
        },
    )


def run_arq_worker(settings: Settings) -> None:
    """Run jobs until a signal stops the worker. arq's poll loop ends when Redis goes away under
    it; rather than leave the restart to a supervisor, the worker starts again itself once Redis
    answers (nothing is lost meanwhile: the outbox rows wait in PostgreSQL)."""
    backoff = 1.0
    while True:
        try:
            run_worker(worker_settings(settings))
            return
        except (RedisConnectionError, RedisTimeoutError, ConnectionError) as exc:
            log.warning(
                "job worker lost Redis (%s); starting again in %.0f s", type(exc).__name__, backoff
            )
            time.sleep(backoff)
            backoff = min(backoff * 2, 30.0)
