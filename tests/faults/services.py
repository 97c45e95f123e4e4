"""A Redis server and a PostgreSQL cluster of the test's own, to stop and start at will.

The machine's shared PostgreSQL and Redis serve every other test running at the same time, so a
fault test never touches them: it starts its own on free loopback ports with their data in a
temporary folder. PostgreSQL refuses to run as root, so as root its commands run as the
``postgres`` OS user (``runuser``), and the folder is one that user may enter.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import redis

from tests.processes import free_port


def redis_server_binary() -> str | None:
    return shutil.which("redis-server")


def postgres_bin_dir() -> Path | None:
    """The newest PostgreSQL server's bin folder (Debian layout), or ``None``."""
    for found in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        folder = Path(found)
        if (folder / "initdb").exists() and (folder / "pg_ctl").exists():
            return folder
    return None


def missing_services() -> str | None:
    """Why the fault tests cannot run here, or ``None`` when they can."""
    if redis_server_binary() is None:
        return "fault injection needs redis-server (apt-get install redis-server)"
    if postgres_bin_dir() is None:
        return "fault injection needs the PostgreSQL server binaries (apt-get install postgresql)"
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        return "as root, PostgreSQL must run as the postgres user: runuser is missing"
    return None


NO_PERSISTENCE = ("--save", "", "--appendonly", "no", "--dir")


class OwnRedis:
    """``redis-server`` without persistence: a stop loses everything it held, as a crashed
    cache without RDB or AOF does."""

    def __init__(self) -> None:
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="suban-fault-redis-"))
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10.0) -> None:
        binary = redis_server_binary()
        assert binary is not None
        log = (self.dir / "redis.log").open("ab")
        self._process = subprocess.Popen(  # noqa: S603 - fixed arguments
            [
                binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                *NO_PERSISTENCE,
                str(self.dir),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + timeout
        client = redis.Redis(port=self.port, socket_connect_timeout=0.5)
        try:
            while True:
                try:
                    client.ping()
                    return
                except redis.ConnectionError:
                    if time.monotonic() > deadline:
                        raise RuntimeError("own redis-server did not start") from None
                    time.sleep(0.05)
        finally:
            client.close()

    def stop(self) -> None:
        if self._process is None:
            return
        self._process.kill()
        self._process.wait(timeout=10)
        self._process = None

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


class OwnPostgres:
    """A throw-away cluster (trust auth, fsync off) with one database, ``suban``."""

    def __init__(self) -> None:
        bin_dir = postgres_bin_dir()
        assert bin_dir is not None
        self.bin = bin_dir
        self.port = free_port()
        # Under /tmp itself: pytest's tmp_path sits in a folder only root may enter.
        self.dir = Path(tempfile.mkdtemp(prefix="suban-fault-pg-"))
        self.data = self.dir / "data"
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres", "postgres")
        self._initdb()

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/suban"

    @property
    def admin_url(self) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        command = [str(self.bin / args[0]), *args[1:]]
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        done = subprocess.run(  # noqa: S603 - fixed arguments
            command, capture_output=True, text=True, timeout=120, check=False, cwd=self.dir
        )
        if check and done.returncode != 0:
            raise RuntimeError(f"{args[0]} failed: {done.stdout}\n{done.stderr}")
        return done

    def _initdb(self) -> None:
        self._run(
            "initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "-E", "UTF8",
            "--locale=C", "--no-sync",
        )  # fmt: skip

    def start(self) -> None:
        options = (
            f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c max_connections=100"
        )
        self._run(
            "pg_ctl", "-D", str(self.data), "-l", str(self.dir / "pg.log"), "-o", options,
            "-w", "-t", "90", "start",
        )  # fmt: skip

    def stop(self, mode: str = "fast") -> None:
        """``fast`` ends every session and shuts down cleanly (what a restart does)."""
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "30", "stop")

    def create_database(self) -> None:
        self._run("psql", "-h", str(self.dir), "-p", str(self.port), "-U", "postgres", "-c",
                  "CREATE DATABASE suban")  # fmt: skip

    def log_text(self) -> str:
        path = self.dir / "pg.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def close(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop", check=False)
        shutil.rmtree(self.dir, ignore_errors=True)
