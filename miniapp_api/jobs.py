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
from typing import Any

from arq import cron
from arq.connections import ArqRedis, RedisSettings
from arq.worker import run_worker
from sanic import Sanic

from miniapp_api.logging_setup import configure_logging
from miniapp_api.settings import Settings
from miniapp_api.wechat_setup import create_wechat_clients

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


@dataclass(frozen=True)
class Job:
    function: JobFunction
    # Run every this many minutes (aligned to the clock); None: only when enqueued.
    every_minutes: int | None = None

    @property
    def name(self) -> str:
        return self.function.__name__


# Later features add their jobs here (notification delivery, reminders, camera sweep, …).
JOBS: tuple[Job, ...] = (Job(warm_wechat_tokens, every_minutes=5),)


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
    """Hand a job to whichever runner this deployment has."""
    job = job_named(name)
    runner = getattr(app.ctx, "jobs", None)
    if isinstance(runner, InProcessRunner):
        runner.submit(job, **kwargs)
        return
    arq = ArqRedis(connection_pool=app.ctx.redis.connection_pool)
    await arq.enqueue_job(job.name, _queue_name=QUEUE_NAME, **kwargs)


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


def worker_settings(settings: Settings) -> type:
    """arq's WorkerSettings for ``suban worker``, built from our settings."""

    async def on_startup(ctx: JobContext) -> None:
        # arq put its own client (an ArqRedis, so jobs can enqueue follow-ups) in ctx["redis"]:
        # one pool per worker process, used for everything.
        configure_logging(settings.production, settings.log_level)
        ctx["settings"] = settings
        ctx["wechat"] = create_wechat_clients(settings, ctx["redis"])

    async def on_shutdown(ctx: JobContext) -> None:
        await ctx["wechat"].aclose()

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
        },
    )


def run_arq_worker(settings: Settings) -> None:
    run_worker(worker_settings(settings))
