"""Real servers for tests, as processes or inside the test's event loop: started, waited for,
and always stopped."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager, suppress
from pathlib import Path
from typing import Any

import httpx
from sanic import Sanic

PROJECT_ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def running_process(
    args: list[str],
    *,
    ready_url: str,
    log_path: Path,
    env: dict[str, str] | None = None,
    timeout: float = 90.0,
) -> Iterator[subprocess.Popen[bytes]]:
    """Start ``args``, wait until ``ready_url`` answers 200, yield, then stop it (TERM, then KILL).
    Its output goes to ``log_path``, which is shown if it never comes up."""
    with log_path.open("wb") as log:
        process = subprocess.Popen(  # noqa: S603 - our own commands, fixed arguments
            args,
            cwd=PROJECT_ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            # Its own process group, so its helpers (Sanic's workers and manager) go with it.
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"{args[0]} exited:\n{log_path.read_text(errors='replace')}")
            try:
                if httpx.get(ready_url, timeout=1, trust_env=False).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"{args[0]} did not answer:\n{log_path.read_text(errors='replace')}"
                )
            time.sleep(0.1)
        yield process
    finally:
        # TERM to the main process only, as systemd's KillMode=mixed does: Sanic's main process
        # stops its workers itself, and a TERM to its multiprocessing manager first breaks that.
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        # Whatever of the group outlived a clean stop (or a kill) must not outlive the test.
        _signal_group(process, signal.SIGKILL)


def _signal_group(process: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    with suppress(ProcessLookupError):
        os.killpg(process.pid, sig)


@asynccontextmanager
async def serving_in_loop(app: Sanic[Any, Any], host: str, port: int) -> AsyncIterator[str]:
    """Serve ``app`` on a loopback port inside the running event loop (Sanic's low-level API,
    with its start and stop events run by hand); yields the base URL."""
    server = await app.create_server(
        host=host, port=port, return_asyncio_server=True, access_log=False
    )
    assert server is not None
    await server.startup()
    await server.before_start()
    await server.after_start()
    try:
        yield f"http://{host}:{port}"
    finally:
        await server.before_stop()
        closing = server.close()
        if closing is not None:
            await closing
        await server.after_stop()


@contextmanager
def suban_with_simulator(
    tmp_path: Path,
    *,
    database_url: str,
    redis_url: str,
    pii_keys: str,
    workers: int = 2,
    env: dict[str, str] | None = None,
) -> Iterator[tuple[str, str]]:
    """``suban serve`` with ``workers`` workers and the WeChat simulator, each its own process;
    yields (app base URL, simulator base URL). Logs go to ``tmp_path`` (serve.log, sim.log)."""
    sim_port, port = free_port(), free_port()
    base_env = {k: v for k, v in os.environ.items() if not k.startswith("SUBAN_")}
    sim_base = f"http://127.0.0.1:{sim_port}"
    serve_env = (
        base_env
        | {
            "SUBAN_DATABASE_URL": database_url,
            "SUBAN_VAR_DIR": str(tmp_path),
            "SUBAN_PORT": str(port),
            "SUBAN_WORKERS": str(workers),
            "SUBAN_REDIS_URL": redis_url,
            # Simulator credentials, but the API at the simulator process: with several workers the
            # app cannot mount it in-process.
            "SUBAN_WECHAT_API_BASE": f"{sim_base}/wechat",
            "SUBAN_WECOM_API_BASE": f"{sim_base}/wecom",
            "SUBAN_PII_KEYS": pii_keys,
            "SUBAN_ENV": "dev",
        }
        | (env or {})
    )
    with (
        running_process(
            [sys.executable, "-m", "wechat.simulator", "--port", str(sim_port)],
            ready_url=f"{sim_base}/control/counters",
            log_path=tmp_path / "sim.log",
            env=base_env,
        ),
        running_process(
            [str(Path(sys.executable).with_name("suban")), "serve"],
            ready_url=f"http://127.0.0.1:{port}/readyz",
            log_path=tmp_path / "serve.log",
            env=serve_env,
        ),
    ):
        yield f"http://127.0.0.1:{port}", sim_base


def tcp_peers_by_process(port: int) -> dict[int, set[int]]:
    """Which local process holds each established TCP connection accepted on ``port``: pid → the
    peers' ports (Linux ``/proc``). Tells which worker of a server took which client."""
    inodes: dict[int, int] = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                local, remote, state, inode = fields[1], fields[2], fields[3], int(fields[9])
                if state == "01" and int(local.rsplit(":", 1)[1], 16) == port:
                    inodes[inode] = int(remote.rsplit(":", 1)[1], 16)
    peers: dict[int, set[int]] = {}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            fds = list((proc / "fd").iterdir())
        except OSError:
            continue
        for fd in fds:
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            if target.startswith("socket:[") and int(target[8:-1]) in inodes:
                peers.setdefault(int(proc.name), set()).add(inodes[int(target[8:-1])])
    return peers
