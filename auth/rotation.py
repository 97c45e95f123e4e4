"""Re-sealing personal data under the newest PII key (`suban rotate-keys`) while the service runs.

Why this is safe beside live workers:

- Rows are read in primary-key batches (keyset pagination, never OFFSET, so rows inserted or
  deleted meanwhile neither shift nor repeat a batch) and no lock is held between batches.
- Each value is written back with a compare-and-swap (``WHERE id = ? AND <column> = <what we
  read>``): a value a worker changed after we read it is left alone and counted as *changed*,
  never overwritten with the stale plaintext we decrypted. The next run picks it up.
- Resumable without a cursor: a value already under the newest key is only checked, so a run
  stopped anywhere and started again does just the rest.

What it assumes: every running instance already holds the new key (``SUBAN_PII_KEYS`` with the new
version last) before rotation starts, otherwise an instance with the old keyring cannot open what
was re-sealed. Blind indexes are untouched: they derive from the keyring's *first* key.

No plaintext and no sealed value ever leaves this module in a report or an exception: a value that
does not open is named by table, column and row id only (its text may be anything, even a phone
number stored by mistake).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from tortoise.models import Model
from tortoise.transactions import in_transaction

from auth.models import SEALED_COLUMNS
from auth.pii import Keyring, SealBroken

DEFAULT_BATCH_SIZE = 500

SealedColumns = Sequence[tuple[type[Model], tuple[tuple[str, str], ...]]]


@dataclass(slots=True)
class Counts:
    resealed: int = 0  # in a dry run: would be re-sealed
    current: int = 0  # already under the newest key (and it opens)
    changed: int = 0  # changed by someone else between our read and our write
    broken: int = 0  # does not open with any key of the keyring

    def add(self, other: Counts) -> None:
        self.resealed += other.resealed
        self.current += other.current
        self.changed += other.changed
        self.broken += other.broken

    @property
    def total(self) -> int:
        return self.resealed + self.current + self.changed + self.broken


@dataclass(frozen=True, slots=True)
class SealedRef:
    """Where a sealed value lives: table, database column, row id. Never the value itself."""

    table: str
    column: str
    row_id: int


@dataclass(frozen=True, slots=True)
class BatchReport:
    """One batch of one table, handed to the ``progress`` callback after its writes committed."""

    table: str
    first_id: int
    last_id: int
    rows: int
    counts: Counts


@dataclass(slots=True)
class RotationReport:
    newest_version: str
    dry_run: bool
    # (table, database column) -> counts, in the order of auth.models.SEALED_COLUMNS.
    columns: dict[tuple[str, str], Counts] = field(default_factory=dict)
    broken: list[SealedRef] = field(default_factory=list)
    batches: int = 0

    @property
    def totals(self) -> Counts:
        total = Counts()
        for counts in self.columns.values():
            total.add(counts)
        return total


Progress = Callable[[BatchReport], None]


async def rotate_keys(
    keyring: Keyring,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    progress: Progress | None = None,
    dry_run: bool = False,
    sealed_columns: SealedColumns = SEALED_COLUMNS,
) -> RotationReport:
    """Re-seal every sealed value not under ``keyring``'s newest key; check all the others open.

    ``progress`` is called after each batch is written; an exception it raises stops the run
    there (what is written stays written). ``dry_run`` reads and counts but writes nothing.
    """
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    report = RotationReport(newest_version=keyring.newest_version, dry_run=dry_run)
    for model, columns in sealed_columns:
        table = model._meta.db_table
        for db_column, _ in columns:
            report.columns[(table, db_column)] = Counts()
        last_id: int | None = None
        while True:
            rows = await _next_batch(model, columns, last_id, batch_size)
            if not rows:
                break
            counts = await _rotate_batch(keyring, model, columns, rows, report, dry_run=dry_run)
            last_id = rows[-1][0]
            report.batches += 1
            if progress is not None:
                progress(BatchReport(table, rows[0][0], rows[-1][0], len(rows), counts))
            if len(rows) < batch_size:
                break
    return report


async def compare_and_swap(
    model: type[Model], row_id: int, column: str, old: str, new: str
) -> bool:
    """Write ``new`` only if the column still holds ``old``; False when someone changed it."""
    pk = model._meta.pk_attr
    updated = await model.filter(**{pk: row_id, column: old}).update(**{column: new})
    return bool(updated)


async def _next_batch(
    model: type[Model],
    columns: tuple[tuple[str, str], ...],
    last_id: int | None,
    batch_size: int,
) -> list[tuple[Any, ...]]:
    pk = model._meta.pk_attr
    query = model.all() if last_id is None else model.filter(**{f"{pk}__gt": last_id})
    db_columns = [db_column for db_column, _ in columns]
    rows = await query.order_by(pk).limit(batch_size).values_list(pk, *db_columns)
    return [tuple(row) for row in rows]


async def _rotate_batch(
    keyring: Keyring,
    model: type[Model],
    columns: tuple[tuple[str, str], ...],
    rows: list[tuple[Any, ...]],
    report: RotationReport,
    *,
    dry_run: bool,
) -> Counts:
    table = model._meta.db_table
    batch = Counts()
    writes: list[tuple[int, str, str, str]] = []
    for row in rows:
        row_id = row[0]
        for (db_column, sealed_as), sealed in zip(columns, row[1:], strict=True):
            if sealed is None:
                continue
            counts = report.columns[(table, db_column)]
            try:
                plain = keyring.open(sealed, table=table, column=sealed_as, row_id=row_id)
            except SealBroken:
                # Not the exception's text: it may quote part of the stored value.
                counts.broken += 1
                batch.broken += 1
                report.broken.append(SealedRef(table, db_column, row_id))
                continue
            if not keyring.needs_reseal(sealed):
                counts.current += 1
                batch.current += 1
                continue
            if dry_run:
                counts.resealed += 1
                batch.resealed += 1
                continue
            fresh = keyring.seal(plain, table=table, column=sealed_as, row_id=row_id)
            writes.append((row_id, db_column, sealed, fresh))
    if writes:
        # One transaction per batch: on SQLite every autocommitted UPDATE would be its own fsync.
        # Each write is still a compare-and-swap, so the transaction adds no lock beyond the rows
        # being written.
        async with in_transaction(model._meta.default_connection):
            swapped = [
                await compare_and_swap(model, row_id, db_column, old, new)
                for row_id, db_column, old, new in writes
            ]
        # Counted once committed: a batch that fails rolls back and counts nothing.
        for (_, db_column, _, _), done in zip(writes, swapped, strict=True):
            counts = report.columns[(table, db_column)]
            if done:
                counts.resealed += 1
                batch.resealed += 1
            else:
                counts.changed += 1
                batch.changed += 1
    return batch
