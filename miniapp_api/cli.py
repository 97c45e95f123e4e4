"""``suban``: serve, worker, migrate, makemigrations, demo, check-config.

Every command reads and validates the settings first and, where it needs them, checks that the
database and Redis answer, so a bad deployment stops with one clear line per problem and exit code 2
instead of a traceback from a worker.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sys
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

from miniapp_api.settings import Settings, SettingsError

EXIT_CONFIG = 2


def _fail(lines: Sequence[str]) -> int:
    for line in lines:
        print(f"suban: {line}", file=sys.stderr)
    return EXIT_CONFIG


def _settings(overrides: dict[str, str | None] | None = None) -> Settings:
    if overrides:
        for name, value in overrides.items():
            if value is not None:
                # Workers are separate processes that read the environment again.
                os.environ[name] = value
    return Settings.from_env()


async def probe_dependencies(
    settings: Settings, timeout: float = 3.0, *, redis: bool = True
) -> list[str]:
    """One line per dependency that does not answer."""
    from tortoise import Tortoise

    from miniapp_api.database import ping_database, tortoise_config
    from miniapp_api.redis_setup import create_redis, ping_redis

    problems: list[str] = []
    try:
        await asyncio.wait_for(
            Tortoise.init(
                config=tortoise_config(settings.database_url), _enable_global_fallback=True
            ),
            timeout,
        )
        await ping_database(timeout)
    except Exception as exc:
        problems.append(
            f"SUBAN_DATABASE_URL: the database does not answer ({type(exc).__name__}: {exc})"
        )
    finally:
        await Tortoise.close_connections()
    if redis and not settings.embedded_redis:
        client = create_redis(settings)
        try:
            await ping_redis(client, timeout)
        except Exception as exc:
            problems.append(f"SUBAN_REDIS_URL: Redis does not answer ({type(exc).__name__}: {exc})")
        finally:
            await client.aclose()
    return problems


def _run(coro_fn: Callable[[], Coroutine[Any, Any, int]]) -> int:
    try:
        return asyncio.run(coro_fn())
    except SettingsError as exc:
        return _fail(exc.lines)


def cmd_check_config(args: argparse.Namespace) -> int:
    settings = _settings()

    async def run() -> int:
        problems = await probe_dependencies(settings)
        if problems:
            return _fail(problems)
        print(
            f"ok: env={settings.env} database={settings.database_kind} "
            f"redis={'embedded' if settings.embedded_redis else 'real'} "
            f"simulator={'on' if settings.simulator else 'off'} workers={settings.workers}"
        )
        return 0

    return _run(run)


def cmd_migrate(args: argparse.Namespace) -> int:
    from miniapp_api.database import apply_migrations

    settings = _settings()

    async def run() -> int:
        problems = await probe_dependencies(settings, redis=False)
        if problems:
            return _fail(problems)
        await apply_migrations(settings.database_url)
        print(f"migrated: {settings.database_kind} schema is at the newest migration")
        return 0

    return _run(run)


def cmd_makemigrations(args: argparse.Namespace) -> int:
    """Write a new migration from model changes (a developer command)."""
    from tortoise.cli import cli as tortoise_cli

    # Writing a migration compares the models with the migration files; no database is touched.
    ctx = tortoise_cli.CLIContext(config="miniapp_api.database.MIGRATION_CONFIG", config_file=None)
    asyncio.run(tortoise_cli.makemigrations(ctx, (), False, args.name))
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from tortoise import Tortoise

    from miniapp_api.app import keyring_from
    from miniapp_api.database import tortoise_config
    from miniapp_api.demo import load_demo

    settings = _settings()

    async def run() -> int:
        problems = await probe_dependencies(settings, redis=False)
        if problems:
            return _fail(problems)
        await Tortoise.init(
            config=tortoise_config(settings.database_url), _enable_global_fallback=True
        )
        try:
            for line in await load_demo(keyring_from(settings)):
                print(f"demo: {line}")
        finally:
            await Tortoise.close_connections()
        return 0

    return _run(run)


def cmd_serve(args: argparse.Namespace) -> int:
    from sanic import Sanic
    from sanic.worker.loader import AppLoader

    from miniapp_api.app import create_app_from_env

    settings = _settings(
        {
            "SUBAN_HOST": args.host,
            "SUBAN_PORT": None if args.port is None else str(args.port),
            "SUBAN_WORKERS": None if args.workers is None else str(args.workers),
        }
    )
    problems = asyncio.run(probe_dependencies(settings))
    if problems:
        return _fail(problems)
    if settings.workers > 1:
        # Workers add their counts up through files here; stale files from a previous run would
        # be counted again, so the folder starts empty.
        metrics_dir = settings.var_dir / "prometheus"
        shutil.rmtree(metrics_dir, ignore_errors=True)
        metrics_dir.mkdir(parents=True)
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir.resolve())
    loader = AppLoader(factory=create_app_from_env)
    app = loader.load()
    app.prepare(
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        access_log=not settings.production,
        motd=not settings.production,
        single_process=settings.workers == 1 and args.single_process,
    )
    Sanic.serve(primary=app, app_loader=loader)
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    from miniapp_api.jobs import run_arq_worker

    settings = _settings()
    if settings.embedded_redis:
        return _fail(
            [
                "SUBAN_REDIS_URL=memory://: the embedded default runs background jobs inside "
                "`suban serve`; a separate worker needs a real Redis"
            ]
        )
    problems = asyncio.run(probe_dependencies(settings))
    if problems:
        return _fail(problems)
    run_arq_worker(settings)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="suban", description="速办税 service")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="serve HTTP (workers from SUBAN_WORKERS)")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.add_argument("--workers", type=int)
    serve.add_argument(
        "--single-process",
        action="store_true",
        help="with one worker, run it in this process (no worker manager)",
    )
    serve.set_defaults(func=cmd_serve)
    sub.add_parser("worker", help="run background jobs (arq on Redis)").set_defaults(
        func=cmd_worker
    )
    sub.add_parser("migrate", help="apply database migrations").set_defaults(func=cmd_migrate)
    mk = sub.add_parser("makemigrations", help="write a migration from model changes")
    mk.add_argument("--name", "-n")
    mk.set_defaults(func=cmd_makemigrations)
    sub.add_parser("demo", help="load the demo data (idempotent)").set_defaults(func=cmd_demo)
    sub.add_parser("check-config", help="validate settings and reach dependencies").set_defaults(
        func=cmd_check_config
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        result: int = args.func(args)
    except SettingsError as exc:
        return _fail(exc.lines)
    return result


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
