"""The whole service as processes on the test's own PostgreSQL and Redis: ``suban serve`` (two
workers), one ``suban worker`` and the WeChat simulator, each with its log in the test's folder."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests.conftest import TEST_PII_KEYS_ENV, run_cli
from tests.faults.services import OwnPostgres, OwnRedis
from tests.processes import free_port, running_process

SUBAN = str(Path(sys.executable).with_name("suban"))


@dataclass
class Stack:
    base: str
    simulator: str
    database_url: str
    logs: Path
    env: dict[str, str]
    redis: OwnRedis | None = None
    postgres: OwnPostgres | None = None
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def log_text(self, tail: int = 6000) -> str:
        return "\n".join(
            f"--- {p.name}\n{p.read_text(errors='replace')[-tail:]}"
            for p in sorted(self.logs.glob("*.log"))
        )

    def start_worker(self, timeout: float = 90.0) -> subprocess.Popen[bytes]:
        """One more ``suban worker``, once it takes jobs; stopped (TERM, then KILL) when the stack
        closes. Waiting matters: a worker still importing when a scenario stops Redis finds no
        Redis at start and exits, which is not the fault under test."""
        path = self.logs / f"worker-{len(self.workers) + 1}.log"
        log = path.open("wb")
        process = subprocess.Popen(  # noqa: S603 - our own console script
            [SUBAN, "worker"],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        self.workers.append(process)
        deadline = time.monotonic() + timeout
        while "job worker ready" not in path.read_text(errors="replace"):
            if process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"suban worker did not start:\n{path.read_text()}")
            time.sleep(0.2)
        return process

    def stop_workers(self) -> None:
        for process in self.workers:
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
            with suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)


def _clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("SUBAN_")}


@contextmanager
def own_stack(
    tmp_path: Path, *, with_worker: bool = True, extra_env: dict[str, str] | None = None
) -> Iterator[Stack]:
    """PostgreSQL and Redis of this test, migrated and loaded with the demo data, and the
    service on them."""
    with ExitStack() as stack:
        postgres = OwnPostgres()
        stack.callback(postgres.close)
        postgres.start()
        postgres.create_database()
        own_redis = OwnRedis()
        stack.callback(own_redis.close)
        own_redis.start()
        yield from _serving(
            stack,
            tmp_path,
            database_url=postgres.url,
            redis_url=own_redis.url,
            workers=2,
            with_worker=with_worker,
            own=(own_redis, postgres),
            extra_env=extra_env,
        )


@contextmanager
def embedded_stack(tmp_path: Path, *, extra_env: dict[str, str] | None = None) -> Iterator[Stack]:
    """The embedded default (SQLite file, Redis inside the process, one worker, jobs in-process)
    with the simulator as its own process."""
    with ExitStack() as stack:
        yield from _serving(
            stack,
            tmp_path,
            database_url=f"sqlite://{tmp_path / 'suban.sqlite3'}",
            redis_url="memory://",
            workers=1,
            with_worker=False,
            own=(None, None),
            extra_env=extra_env,
        )


def _serving(
    stack: ExitStack,
    tmp_path: Path,
    *,
    database_url: str,
    redis_url: str,
    workers: int,
    with_worker: bool,
    own: tuple[OwnRedis | None, OwnPostgres | None],
    extra_env: dict[str, str] | None,
) -> Iterator[Stack]:
    var = tmp_path / "var"
    var.mkdir(exist_ok=True)
    data_env = {"SUBAN_DATABASE_URL": database_url, "SUBAN_VAR_DIR": str(var)}
    for command in ("migrate", "demo"):
        done = run_cli(command, env=data_env)
        assert done.returncode == 0, f"suban {command} failed:\n{done.stderr}"
    sim_port, port = free_port(), free_port()
    sim = f"http://127.0.0.1:{sim_port}"
    clean = _clean_env()
    env = (
        clean
        | data_env
        | {
            "SUBAN_REDIS_URL": redis_url,
            "SUBAN_PORT": str(port),
            "SUBAN_WORKERS": str(workers),
            "SUBAN_PII_KEYS": TEST_PII_KEYS_ENV,
            "SUBAN_WECHAT_API_BASE": f"{sim}/wechat",
            "SUBAN_WECOM_API_BASE": f"{sim}/wecom",
            "SUBAN_ENV": "dev",
            # The load comes from one address; the progress limit per address is not under test.
            "SUBAN_PROGRESS_IP_LIMIT": "1000000",
        }
        | (extra_env or {})
    )
    stack.enter_context(
        running_process(
            [sys.executable, "-m", "wechat.simulator", "--port", str(sim_port)],
            ready_url=f"{sim}/control/counters",
            log_path=tmp_path / "sim.log",
            env=clean,
        )
    )
    stack.enter_context(
        running_process(
            [SUBAN, "serve"],
            ready_url=f"http://127.0.0.1:{port}/readyz",
            log_path=tmp_path / "serve.log",
            env=env,
            timeout=90,
        )
    )
    own_redis, postgres = own
    built = Stack(
        base=f"http://127.0.0.1:{port}",
        simulator=sim,
        database_url=database_url,
        logs=tmp_path,
        env=env,
        redis=own_redis,
        postgres=postgres,
    )
    stack.callback(built.stop_workers)
    if with_worker:
        built.start_worker()
    yield built


def wait_until_ready(base: str, timeout: float = 60.0) -> float:
    """Seconds until ``/readyz`` answers 200 again."""
    started = time.monotonic()
    while True:
        with suppress(httpx.TransportError):
            if httpx.get(f"{base}/readyz", timeout=3, trust_env=False).status_code == 200:
                return time.monotonic() - started
        if time.monotonic() - started > timeout:
            raise AssertionError(f"{base} not ready again after {timeout} s")
        time.sleep(0.1)
