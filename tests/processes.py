"""Real server processes for tests: started, waited for, and always stopped."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import httpx

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
    timeout: float = 30.0,
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
