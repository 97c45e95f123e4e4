"""``suban``: serve, worker, migrate, makemigrations, demo, check-config, staff, rotate-keys, audit.

Every command reads and validates the settings first and, where it needs them, checks that the
database and Redis answer, so a bad deployment stops with one clear line per problem and exit code 2
instead of a traceback from a worker.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import os
import shutil
import sys
from collections.abc import Callable, Coroutine, Mapping, Sequence
from typing import Any

from auth.pii import Keyring
from miniapp_api.settings import Settings, SettingsError

EXIT_CONFIG = 2
STAFF_PASSWORD_ENV = "SUBAN_STAFF_PASSWORD"  # noqa: S105 - the variable's name, not a password


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
    from auth import audit

    settings = Settings.from_env()
    # Audit events written by commands (staff accounts, rotation) chain like the service's.
    audit.configure(settings.pii_cipher)
    return settings


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
    if settings.production:
        # Demo data brings a staff account with a published password and devices with a
        # published secret.
        return _fail(["SUBAN_ENV=production: the demo data is for development only"])

    async def run() -> int:
        problems = await probe_dependencies(settings, redis=False)
        if problems:
            return _fail(problems)
        await Tortoise.init(
            config=tortoise_config(settings.database_url), _enable_global_fallback=True
        )
        try:
            lines = await load_demo(
                keyring_from(settings),
                staff_password=settings.demo_staff_password,
                device_secret=settings.demo_device_secret,
                history_years=settings.demo_history_years,
            )
            for line in lines:
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


class CommandFailed(Exception):
    """A command cannot go on; its message is the one line the operator sees."""


def read_staff_password(
    environ: Mapping[str, str] = os.environ,
    prompt: Callable[[str], str] = getpass.getpass,
) -> str:
    """The new password from SUBAN_STAFF_PASSWORD (for scripts), else asked twice, unechoed."""
    given = environ.get(STAFF_PASSWORD_ENV)
    if given:
        return given
    try:
        first = prompt("new password: ")
        second = prompt("the same password again: ")
    except (EOFError, KeyboardInterrupt):
        raise CommandFailed("staff: password: not given") from None
    if second != first:
        raise CommandFailed("staff: password: the two entries differ")
    return first


# A staff subcommand's work: its arguments, the settings, the keyring and the password read.
StaffAction = Callable[
    [argparse.Namespace, Settings, Keyring, str | None], Coroutine[Any, Any, int]
]


def _staff_command(action: StaffAction, *, password: bool) -> Callable[[argparse.Namespace], int]:
    """Settings, password input (checked before the database is touched), database, then
    ``action``; a broken rule or an unknown username is one line and exit code 2."""

    def command(args: argparse.Namespace) -> int:
        from tortoise import Tortoise

        from auth.staff import (
            InvalidStaff,
            StaffNotFound,
            check_password,
            check_roles,
            check_username,
        )
        from miniapp_api.app import keyring_from
        from miniapp_api.database import tortoise_config

        settings = _settings()
        try:
            if args.staff_command == "add":
                check_username(args.username)
                check_roles(args.roles)
            new_password = check_password(read_staff_password()) if password else None
        except InvalidStaff as exc:
            return _fail([f"staff: {exc}"])
        except CommandFailed as exc:
            return _fail([str(exc)])

        async def run() -> int:
            problems = await probe_dependencies(settings, redis=False)
            if problems:
                return _fail(problems)
            await Tortoise.init(
                config=tortoise_config(settings.database_url), _enable_global_fallback=True
            )
            try:
                return await action(args, settings, keyring_from(settings), new_password)
            except InvalidStaff as exc:
                return _fail([f"staff: {exc}"])
            except StaffNotFound as exc:
                return _fail([f"staff: no staff user {exc.username}"])
            finally:
                await Tortoise.close_connections()

        return _run(run)

    return command


async def _staff_add(
    args: argparse.Namespace, settings: Settings, keyring: Keyring, password: str | None
) -> int:
    from auth.audit import Actor
    from auth.staff import create_staff

    created = await create_staff(
        args.username,
        password or "",
        roles=args.roles,
        display_name=args.display_name,
        totp=args.totp,
        keyring=keyring,
        actor=Actor("system", "cli"),
    )
    print(f"staff {created.user.username} created, roles {', '.join(created.user.roles)}")
    if created.otp_uri:
        print("add this to an authenticator app now; it is not shown again:")
        print(created.otp_uri)
    return 0


async def _staff_reset_password(
    args: argparse.Namespace, settings: Settings, keyring: Keyring, password: str | None
) -> int:
    from auth.audit import Actor
    from auth.staff import set_password

    user = await set_password(args.username, password or "", actor=Actor("system", "cli"))
    ended = await _end_sessions(settings, user.id)
    print(f"staff {user.username}: password set, lockout cleared; {ended}")
    return 0


async def _staff_unlock(
    args: argparse.Namespace, settings: Settings, keyring: Keyring, password: str | None
) -> int:
    from auth.audit import Actor
    from auth.staff import unlock

    user = await unlock(args.username, actor=Actor("system", "cli"))
    print(f"staff {user.username}: unlocked")
    return 0


async def _end_sessions(settings: Settings, staff_id: int) -> str:
    """End the account's sessions after a new password: whoever knew the old one is out."""
    if settings.embedded_redis:
        # memory:// lives inside the serving process, out of this one's reach.
        return "sessions on an embedded-Redis server end when it restarts"
    from miniapp_api.redis_setup import create_redis
    from miniapp_api.sessions_setup import session_store

    client = create_redis(settings)
    try:
        ended = await session_store(client, settings).revoke_all("staff", staff_id)
    finally:
        await client.aclose()
    return f"{ended} session(s) ended"


def add_staff_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from auth.roles import STAFF_ROLES

    staff = sub.add_parser("staff", help="staff console accounts")
    commands = staff.add_subparsers(dest="staff_command", required=True)
    password_help = f"the password comes from {STAFF_PASSWORD_ENV}, else it is asked twice"
    add = commands.add_parser("add", help="create a staff account", description=password_help)
    add.add_argument("username")
    add.add_argument(
        "--role",
        dest="roles",
        action="append",
        default=[],
        metavar="ROLE",
        help=f"{', '.join(STAFF_ROLES)}; repeat for several",
    )
    add.add_argument("--display-name", help="shown in the console (default: the username)")
    add.add_argument(
        "--totp", action="store_true", help="require a TOTP code; prints its otpauth:// URI once"
    )
    add.set_defaults(func=_staff_command(_staff_add, password=True))
    reset = commands.add_parser(
        "reset-password",
        help="set a new password, clear the lockout, end the sessions",
        description=password_help,
    )
    reset.add_argument("username")
    reset.set_defaults(func=_staff_command(_staff_reset_password, password=True))
    unlock = commands.add_parser("unlock", help="clear the lockout after failed logins")
    unlock.add_argument("username")
    unlock.set_defaults(func=_staff_command(_staff_unlock, password=False))


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
    add_staff_parser(sub)
    # Its own module (miniapp_api/cli_rotation.py), imported late: it imports from this one.
    from miniapp_api.cli_rotation import add_rotate_keys_parser

    add_rotate_keys_parser(sub)
    from miniapp_api.cli_audit import add_audit_parser

    add_audit_parser(sub)
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
