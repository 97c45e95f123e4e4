"""``suban audit verify``: walk the audit trail's hash chain and say whether it is intact.

Exit codes: 0 intact, 1 a row was edited, deleted or inserted (listed by id), 2 bad settings or
an unreachable database. The head it prints (id and hash) is what operators record outside the
database, to notice later if rows were cut from the end.
"""

from __future__ import annotations

import argparse

from miniapp_api.settings import SettingsError

EXIT_BROKEN = 1


def add_audit_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    audit = sub.add_parser("audit", help="the audit trail")
    commands = audit.add_subparsers(dest="audit_command", required=True)
    verify = commands.add_parser(
        "verify", help="check the hash chain: finds edited, deleted or inserted rows"
    )
    verify.add_argument(
        "--expect-head",
        metavar="ID:HASH",
        help="a head recorded earlier: fail unless that row is still in the chain unchanged",
    )
    verify.set_defaults(func=cmd_audit_verify)


def cmd_audit_verify(args: argparse.Namespace) -> int:
    from tortoise import Tortoise

    from auth.audit_chain import verify_chain
    from auth.models import AuditEvent
    from miniapp_api.cli import _fail, _run, _settings, probe_dependencies
    from miniapp_api.database import tortoise_config

    try:
        settings = _settings()
    except SettingsError as exc:
        return _fail(exc.lines)
    expected: tuple[int, str] | None = None
    if args.expect_head:
        head_id, _, head_hash = args.expect_head.partition(":")
        if not head_id.isdigit() or len(head_hash) != 64:
            return _fail(["--expect-head: give ID:HASH as `suban audit verify` printed it"])
        expected = (int(head_id), head_hash)

    async def run() -> int:
        problems = await probe_dependencies(settings, redis=False)
        if problems:
            return _fail(problems)
        await Tortoise.init(
            config=tortoise_config(settings.database_url), _enable_global_fallback=True
        )
        try:
            report = await verify_chain()
            recorded = None
            if expected is not None:
                recorded = await AuditEvent.get_or_none(id=expected[0])
        finally:
            await Tortoise.close_connections()
        print(f"{report.rows} audit events, {report.legacy} from before the chain")
        for row_id, problem in report.problems:
            print(f"row {row_id}: {problem}")
        if expected is not None and (recorded is None or recorded.hash != expected[1]):
            print(f"row {expected[0]}: the recorded head is gone or changed (rows cut?)")
            return EXIT_BROKEN
        if report.problems:
            return EXIT_BROKEN
        print(f"chain intact; head {report.head_id}:{report.head_hash}")
        return 0

    return _run(run)
