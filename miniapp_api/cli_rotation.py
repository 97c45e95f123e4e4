"""``suban rotate-keys``: re-seal personal data under the newest key of ``SUBAN_PII_KEYS``.

Kept apart from miniapp_api/cli.py so the command and its wording live beside nothing else;
cli.py registers it with :func:`add_rotate_keys_parser`.

Exit codes: 0 done (or nothing to rotate), 1 some values do not open (listed by table, column and
row id, never by content), 2 bad settings or an unreachable database.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from auth.pii import Keyring
from auth.rotation import DEFAULT_BATCH_SIZE, BatchReport, Counts, RotationReport, rotate_keys
from miniapp_api.database import SEALED_COLUMNS
from miniapp_api.settings import SettingsError

EXIT_BROKEN = 1
MAX_BATCH_SIZE = 100_000


def add_rotate_keys_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    rotate = sub.add_parser(
        "rotate-keys",
        help="re-seal personal data under the newest PII key (resumable, safe while serving)",
    )
    _add_arguments(rotate)


def _add_arguments(rotate: argparse.ArgumentParser) -> None:
    rotate.add_argument(
        "--batch-size",
        type=_batch_size,
        default=DEFAULT_BATCH_SIZE,
        help=f"rows read and written per batch (default {DEFAULT_BATCH_SIZE})",
    )
    rotate.add_argument(
        "--dry-run", action="store_true", help="count what would be re-sealed, write nothing"
    )
    rotate.set_defaults(func=cmd_rotate_keys)


def cmd_rotate_keys(args: argparse.Namespace) -> int:
    from tortoise import Tortoise

    # Imported here, not at the top: cli.py imports this module to register the command.
    from miniapp_api.app import keyring_from
    from miniapp_api.cli import _fail, _run, _settings, probe_dependencies
    from miniapp_api.database import tortoise_config

    try:
        settings = _settings()
    except SettingsError as exc:
        return _fail(exc.lines)

    async def run() -> int:
        problems = await probe_dependencies(settings, redis=False)
        if problems:
            return _fail(problems)
        keyring = keyring_from(settings)
        await Tortoise.init(
            config=tortoise_config(settings.database_url), _enable_global_fallback=True
        )
        try:
            report = await rotate_keys(
                keyring,
                batch_size=args.batch_size,
                progress=lambda batch: print(_batch_line(batch, dry_run=args.dry_run), flush=True),
                dry_run=args.dry_run,
                sealed_columns=SEALED_COLUMNS,
            )
        finally:
            await Tortoise.close_connections()
        return _summarize(report, keyring)

    return _run(run)


def _batch_size(raw: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if not 1 <= value <= MAX_BATCH_SIZE:
        raise argparse.ArgumentTypeError(f"must be a whole number from 1 to {MAX_BATCH_SIZE}")
    return value


def _counts_text(counts: Counts, *, dry_run: bool) -> str:
    resealed = "would re-seal" if dry_run else "re-sealed"
    return (
        f"{counts.resealed} {resealed}, {counts.current} already current, "
        f"{counts.changed} changed meanwhile, {counts.broken} broken"
    )


def _batch_line(batch: BatchReport, *, dry_run: bool) -> str:
    return (
        f"batch {batch.table} ids {batch.first_id}..{batch.last_id} "
        f"({batch.rows} row{'' if batch.rows == 1 else 's'}): "
        f"{_counts_text(batch.counts, dry_run=dry_run)}"
    )


def _summarize(report: RotationReport, keyring: Keyring) -> int:
    for (table, column), counts in report.columns.items():
        print(f"{table}.{column}: {_counts_text(counts, dry_run=report.dry_run)}")
    totals = report.totals
    newest = report.newest_version
    if len(keyring.keys) == 1:
        print(
            f"nothing to rotate: SUBAN_PII_KEYS holds one key ({newest}); "
            f"{totals.current} of {totals.total} sealed values checked are under it"
        )
    elif report.dry_run:
        print(f"dry run: {totals.resealed} values would be re-sealed under {newest}")
    else:
        print(f"done: {_counts_text(totals, dry_run=False)} (newest key {newest})")
        if totals.changed:
            print("values changed meanwhile keep their new content: run again to re-seal them")
        elif totals.resealed:
            print("run again to confirm nothing is left under older keys")
        elif not totals.broken:
            print(_retirement_line(keyring))
    for ref in report.broken:
        print(f"broken: {ref.table}.{ref.column} row {ref.row_id}")
    if report.broken:
        print(
            f"suban: {len(report.broken)} sealed values do not open with SUBAN_PII_KEYS "
            "(listed above, left unchanged)",
            file=sys.stderr,
        )
        return EXIT_BROKEN
    return 0


def _retirement_line(keyring: Keyring) -> str:
    first = keyring.keys[0][0]
    retired = [version for version, _ in keyring.keys[1:-1]]
    # The first key derives every blind index (auth/pii.py): dropping it breaks lookups by ID
    # number and phone until everything is re-indexed, so it is never offered for retirement.
    keep = f"keep {first} first in SUBAN_PII_KEYS: it derives the blind indexes"
    if retired:
        return (
            f"every value is under {keyring.newest_version}; {', '.join(retired)} may leave "
            f"SUBAN_PII_KEYS once every instance runs with {keyring.newest_version}; {keep}"
        )
    return f"every value is under {keyring.newest_version}; {keep}"


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m miniapp_api.cli_rotation``: the command on its own, same arguments."""
    parser = argparse.ArgumentParser(
        prog="suban rotate-keys", description="re-seal personal data under the newest PII key"
    )
    _add_arguments(parser)
    return cmd_rotate_keys(parser.parse_args(argv))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
