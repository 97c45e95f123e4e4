"""Background jobs: the same functions run in-process (embedded default) or on arq workers."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest
from arq.worker import Worker

from miniapp_api.jobs import InProcessRunner, Job, enqueue, warm_wechat_tokens, worker_settings
from miniapp_api.settings import Settings
from tests.conftest import BACKEND, REAL_REDIS_URL, LiveServer, serve_app


def _token_fetches(live: LiveServer) -> tuple[int, int]:
    counters = live.app.ctx.simulator_state.counters
    return counters["stable_token"], counters["gettoken"]


async def _until(predicate: object, timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():  # type: ignore[operator]
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.02)


async def test_warm_wechat_tokens_fetches_each_token_once_then_reuses_it(
    live: LiveServer,
) -> None:
    ctx = {"wechat": live.app.ctx.wechat}
    await warm_wechat_tokens(ctx)
    await warm_wechat_tokens(ctx)
    # The embedded runner may also have warmed them at start-up: still one fetch each.
    assert _token_fetches(live) == (1, 1)


@pytest.mark.skipif(BACKEND != "embedded", reason="the in-process runner is the embedded default's")
async def test_embedded_default_runs_periodic_jobs_inside_the_server(live: LiveServer) -> None:
    assert isinstance(live.app.ctx.jobs, InProcessRunner)
    await _until(lambda: _token_fetches(live) == (1, 1))


async def test_a_failing_job_is_logged_and_the_runner_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    calls: list[str] = []

    async def broken(ctx: dict[str, object]) -> None:
        calls.append("broken")
        raise RuntimeError("boom")

    async def fine(ctx: dict[str, object]) -> None:
        calls.append("fine")

    runner = InProcessRunner({}, jobs=(Job(broken, every_minutes=1), Job(fine, every_minutes=1)))
    runner.start()
    await _until(lambda: sorted(calls) == ["broken", "fine"])
    await runner.stop()
    assert any("job broken failed" in r.getMessage() for r in caplog.records)


async def test_arq_worker_runs_enqueued_jobs_from_the_app(
    settings: Settings, real_redis: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Production shape: the app enqueues on Redis, a `suban worker` process runs the job."""
    # A worker process configures its logging; this test's process keeps pytest's.
    monkeypatch.setattr("miniapp_api.jobs.configure_logging", lambda *a, **k: None)
    settings = dataclasses.replace(settings, redis_url=REAL_REDIS_URL)
    async with serve_app(settings) as live:
        assert getattr(live.app.ctx, "jobs", None) is None  # no in-process runner here
        await enqueue(live.app, "warm_wechat_tokens")
        assert _token_fetches(live) == (0, 0)
        cls = worker_settings(settings)
        worker = Worker(
            functions=cls.functions,  # type: ignore[attr-defined]
            queue_name=cls.queue_name,  # type: ignore[attr-defined]
            redis_settings=cls.redis_settings,  # type: ignore[attr-defined]
            on_startup=cls.on_startup,  # type: ignore[attr-defined]
            on_shutdown=cls.on_shutdown,  # type: ignore[attr-defined]
            burst=True,
            handle_signals=False,
            poll_delay=0.05,
        )
        try:
            await worker.main()
        finally:
            await worker.close()
        assert worker.jobs_complete == 1
        assert worker.jobs_failed == 0
        assert _token_fetches(live) == (1, 1)
