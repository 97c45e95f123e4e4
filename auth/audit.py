"""The identity audit trail: who did what to whom, when, under which request.

Events are appended, never updated. They name people and accounts by their row ids and taxpayers
by their taxpayer id, never by name, ID number or phone, so the table holds no personal data in
the clear (PIPL art. 51) and can be shown to auditors as it is.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from tortoise.transactions import in_transaction

from auth import audit_chain, clock
from auth.models import AuditEvent

ActorKind = Literal["mp", "staff", "wecom", "system", "anonymous"]


@dataclass(frozen=True)
class Actor:
    """Who acts, and under which request id (for finding the log lines of the same request)."""

    kind: ActorKind
    id: int | str | None = None
    request_id: str | None = None

    @property
    def ref(self) -> str:
        return f"{self.kind}:{self.id}" if self.id is not None else self.kind


SYSTEM = Actor("system")


async def record(
    action: str,
    actor: Actor,
    *,
    target: str | None = None,
    outcome: Literal["ok", "denied", "failed"] = "ok",
    details: Mapping[str, str | int | bool | None] | None = None,
    at: datetime | None = None,
) -> AuditEvent:
    """Append one event, linked into the hash chain. ``details`` carries codes and ids only (a
    reason code, a role). Inside a caller's transaction the chain's lock is held until it
    commits, so keep audit records last in a transaction."""
    fields: dict[str, Any] = {
        "at": at or clock.now(),
        "actor_kind": actor.kind,
        "actor_id": None if actor.id is None else str(actor.id),
        "action": action,
        "target": target,
        "outcome": outcome,
        "request_id": actor.request_id,
        "details": dict(details or {}),
    }
    async with in_transaction() as connection:
        prev = await audit_chain.lock_and_read_head(connection)
        return await AuditEvent.create(
            using_db=connection,
            **fields,
            prev_hash=prev,
            hash=audit_chain.event_hash(_chain_algorithm, prev, **fields),
            chain_alg=_chain_algorithm,
        )


# The chain's hash follows the PII cipher (SM3 beside SM4); one process-wide choice, made once
# at start-up by :func:`configure`, like the logging set-up.
_chain_algorithm: audit_chain.ChainAlgorithm = "sha256"


def configure(cipher_name: str) -> None:
    global _chain_algorithm
    _chain_algorithm = audit_chain.algorithm_for_cipher(cipher_name)


async def events(
    *, since: datetime | None = None, actor: str | None = None, limit: int = 200
) -> list[AuditEvent]:
    """Newest first. ``actor`` is ``kind:id`` as :attr:`Actor.ref` writes it, or a bare kind."""
    query = AuditEvent.all()
    if since is not None:
        query = query.filter(at__gte=clock.local(since))
    if actor:
        kind, _, actor_id = actor.partition(":")
        query = query.filter(actor_kind=kind)
        if actor_id:
            query = query.filter(actor_id=actor_id)
    return await query.order_by("-id").limit(limit)
