"""The audit trail as a hash chain: every event carries the hash of the one before it, so an
edited, deleted or inserted row shows up when the chain is walked (``suban audit verify``).

Each hash covers the previous hash and the event's own fields in a fixed encoding. The chain is
extended under a lock held until the surrounding transaction commits (a PostgreSQL advisory lock;
SQLite has one writer at a time anyway), so two workers or nodes never both link to the same
predecessor, and an event rolled back with its transaction leaves no gap.

SHA-256 by default, SM3 where personal data is sealed with SM4 (GB/T 39786 expects the national
algorithms throughout). A plain hash chain shows tampering by anyone who cannot also rewrite every
later row; against that, operators record the head (``suban audit verify`` prints it) somewhere
the database's writers cannot reach, and compare it later.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from cryptography.hazmat.primitives import hashes
from tortoise.backends.base.client import BaseDBAsyncClient

from auth.models import AuditEvent

ChainAlgorithm = Literal["sha256", "sm3"]
GENESIS = "0" * 64
# Any constant works: it only has to be the same in every process that appends.
_ADVISORY_LOCK_KEY = 0x5B_A0D17


def algorithm_for_cipher(cipher_name: str) -> ChainAlgorithm:
    return "sm3" if cipher_name.startswith("sm4") else "sha256"


def _digest(algorithm: str) -> hashes.Hash:
    if algorithm == "sm3":
        return hashes.Hash(hashes.SM3())
    if algorithm == "sha256":
        return hashes.Hash(hashes.SHA256())
    raise ValueError(f"unknown audit chain algorithm {algorithm!r}")


def _micros(at: datetime) -> int:
    # The instant, not its rendering: SQLite hands datetimes back in Shanghai time, PostgreSQL in
    # UTC, and both must hash alike.
    return int(at.timestamp()) * 1_000_000 + at.microsecond


def event_hash(
    algorithm: str,
    prev_hash: str,
    *,
    at: datetime,
    actor_kind: str,
    actor_id: str | None,
    action: str,
    target: str | None,
    outcome: str,
    request_id: str | None,
    details: Mapping[str, Any],
) -> str:
    """The hex digest over the previous hash and the event's fields, in one canonical JSON."""
    payload = json.dumps(
        [
            prev_hash,
            _micros(at),
            actor_kind,
            actor_id,
            action,
            target,
            outcome,
            request_id,
            dict(details),
        ],
        ensure_ascii=False,
        sort_keys=True,
        separators=(",", ":"),
    ).encode()
    digest = _digest(algorithm)
    digest.update(payload)
    return digest.finalize().hex()


def hash_of(event: AuditEvent, algorithm: str | None = None) -> str:
    return event_hash(
        algorithm or event.chain_alg or "sha256",
        event.prev_hash or GENESIS,
        at=event.at,
        actor_kind=event.actor_kind,
        actor_id=event.actor_id,
        action=event.action,
        target=event.target,
        outcome=event.outcome,
        request_id=event.request_id,
        details=event.details,
    )


async def lock_and_read_head(connection: BaseDBAsyncClient) -> str:
    """Take the chain's lock for the rest of the transaction; return the newest hash."""
    if connection.capabilities.dialect == "postgres":
        await connection.execute_query("SELECT pg_advisory_xact_lock($1)", [_ADVISORY_LOCK_KEY])
    head = (
        await AuditEvent.filter(hash__isnull=False)
        .using_db(connection)
        .order_by("-id")
        .first()
        .values_list("hash", flat=True)
    )
    return str(head) if head else GENESIS


@dataclass(slots=True)
class ChainReport:
    """What walking the chain found. ``legacy`` rows predate the chain (no hash, before the
    first hashed row); every other row must link and hash correctly."""

    rows: int = 0
    legacy: int = 0
    head_id: int | None = None
    head_hash: str | None = None
    problems: list[tuple[int, str]] = field(default_factory=list)

    @property
    def intact(self) -> bool:
        return not self.problems

    def as_dict(self) -> dict[str, Any]:
        return {
            "intact": self.intact,
            "rows": self.rows,
            "legacy": self.legacy,
            "head": {"id": self.head_id, "hash": self.head_hash},
            "problems": [{"id": i, "problem": p} for i, p in self.problems],
        }


async def verify_chain(*, batch_size: int = 1000, max_problems: int = 100) -> ChainReport:
    """Walk every audit event in id order, checking each link and each hash."""
    report = ChainReport()
    previous: str | None = None  # None: still before the first hashed row
    last_id = 0
    while True:
        batch = await AuditEvent.filter(id__gt=last_id).order_by("id").limit(batch_size)
        if not batch:
            break
        for event in batch:
            report.rows += 1
            last_id = event.id
            if event.hash is None:
                if previous is None:
                    report.legacy += 1
                else:
                    report.problems.append((event.id, "no hash inside the chain (inserted?)"))
                continue
            expected_prev = GENESIS if previous is None else previous
            if (event.prev_hash or GENESIS) != expected_prev:
                report.problems.append(
                    (event.id, "does not link to the row before (a row deleted or inserted?)")
                )
            if hash_of(event) != event.hash:
                report.problems.append((event.id, "its fields do not match its hash (edited?)"))
            previous = event.hash
            report.head_id, report.head_hash = event.id, event.hash
            if len(report.problems) >= max_problems:
                return report
    return report
