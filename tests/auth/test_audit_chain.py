"""The audit trail's hash chain: each event links to the one before; an edited, deleted or
inserted row is found; concurrent appends never fork the chain."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator

import pytest
from tortoise import Tortoise

from auth import audit, audit_chain
from auth.audit import Actor
from auth.models import AuditEvent
from miniapp_api.database import tortoise_config


@pytest.fixture
async def orm(database_url: str) -> AsyncIterator[None]:
    await Tortoise.init(config=tortoise_config(database_url), _enable_global_fallback=True)
    try:
        yield
    finally:
        await Tortoise.close_connections()


async def _three() -> list[AuditEvent]:
    actor = Actor("system", request_id="chain-test")
    return [
        await audit.record("chain.test", actor, target=f"t{i}", details={"n": i}) for i in range(3)
    ]


async def test_each_event_links_to_the_one_before(orm: None) -> None:
    before = await AuditEvent.filter(hash__isnull=False).order_by("-id").first()
    events = await _three()
    assert events[0].prev_hash == (before.hash if before else audit_chain.GENESIS)
    for earlier, later in itertools.pairwise(events):
        assert later.prev_hash == earlier.hash
    stored = await AuditEvent.get(id=events[1].id)
    assert stored.hash == audit_chain.hash_of(stored) == events[1].hash
    report = await audit_chain.verify_chain()
    assert report.intact, report.problems
    assert (report.head_id, report.head_hash) == (events[-1].id, events[-1].hash)


async def test_an_edited_row_is_found_and_named(orm: None) -> None:
    events = await _three()
    target = events[1]
    await AuditEvent.filter(id=target.id).update(outcome="denied")
    try:
        report = await audit_chain.verify_chain()
        assert report.problems == [(target.id, "its fields do not match its hash (edited?)")]
    finally:
        await AuditEvent.filter(id=target.id).update(outcome="ok")
    assert (await audit_chain.verify_chain()).intact


async def test_a_deleted_row_breaks_the_link_of_the_next(orm: None) -> None:
    events = await _three()
    gone = await AuditEvent.get(id=events[1].id)
    await gone.delete()
    try:
        report = await audit_chain.verify_chain()
        assert report.problems == [
            (events[2].id, "does not link to the row before (a row deleted or inserted?)")
        ]
    finally:
        # Put it back exactly as it was: the chain is whole again.
        await AuditEvent.create(
            id=gone.id,
            at=gone.at,
            actor_kind=gone.actor_kind,
            actor_id=gone.actor_id,
            action=gone.action,
            target=gone.target,
            outcome=gone.outcome,
            request_id=gone.request_id,
            details=gone.details,
            prev_hash=gone.prev_hash,
            hash=gone.hash,
            chain_alg=gone.chain_alg,
        )
    assert (await audit_chain.verify_chain()).intact


async def test_a_row_slipped_in_without_the_chain_is_found(orm: None) -> None:
    await _three()
    forged = await AuditEvent.create(
        at=(await AuditEvent.all().order_by("-id").first()).at,  # type: ignore[union-attr]
        actor_kind="staff",
        actor_id="1",
        action="grant.revoke",
        outcome="ok",
        details={},
    )
    try:
        report = await audit_chain.verify_chain()
        assert (forged.id, "no hash inside the chain (inserted?)") in report.problems
    finally:
        await forged.delete()
    assert (await audit_chain.verify_chain()).intact


async def test_concurrent_appends_never_fork_the_chain(orm: None) -> None:
    actor = Actor("system", request_id="chain-race")
    events = await asyncio.gather(
        *(audit.record("chain.race", actor, details={"n": i}) for i in range(30))
    )
    links = [e.prev_hash for e in events]
    assert len(set(links)) == 30  # nobody linked to the same predecessor twice
    assert (await audit_chain.verify_chain()).intact


async def test_sm3_beside_sm4(orm: None) -> None:
    audit.configure("sm4-gcm")
    try:
        event = await audit.record("chain.sm3", audit.SYSTEM)
    finally:
        audit.configure("aes-256-gcm")
    assert event.chain_alg == "sm3"
    assert event.hash == audit_chain.hash_of(event)
    assert event.hash != audit_chain.hash_of(event, "sha256")
    after = await audit.record("chain.sha256", audit.SYSTEM)
    assert after.chain_alg == "sha256"
    assert after.prev_hash == event.hash
    assert (await audit_chain.verify_chain()).intact
