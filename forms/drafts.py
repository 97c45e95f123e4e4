"""Drafts: a form saved half-filled and resumed later, on any of the person's devices.

Each save names the version it started from; a save from an older version is refused
(:class:`StaleDraft`) rather than silently overwriting what another device saved meanwhile.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tortoise.transactions import in_transaction

from auth import clock
from auth.models import Person, Taxpayer
from auth.pii import Keyring
from forms.catalogue import FormSpec
from forms.models import Draft
from forms.submissions import open_data, seal_data

MAX_DRAFTS_PER_PERSON = 50


class DraftMissing(Exception):
    """No such draft of this person."""


class StaleDraft(Exception):
    def __init__(self, current: Draft) -> None:
        super().__init__("stale draft version")
        self.current = current


class TooManyDrafts(Exception):
    """The person keeps too many drafts already."""


async def create_draft(
    person: Person,
    spec: FormSpec,
    taxpayer: Taxpayer | None,
    data: Mapping[str, Any],
    *,
    keyring: Keyring,
) -> Draft:
    if await Draft.filter(person_id=person.id).count() >= MAX_DRAFTS_PER_PERSON:
        raise TooManyDrafts
    async with in_transaction():
        draft = await Draft.create(
            person=person,
            form_code=spec.code,
            form_version=spec.version,
            taxpayer=taxpayer,
            data_sealed="",
            version=1,
        )
        draft.data_sealed = seal_data(keyring, "form_draft", draft.id, data)
        await draft.save(update_fields=["data_sealed"])
    return draft


async def get_draft(person: Person, draft_id: int) -> Draft:
    draft = await Draft.get_or_none(id=draft_id, person_id=person.id).prefetch_related("taxpayer")
    if draft is None:
        raise DraftMissing
    return draft


async def save_draft(
    person: Person,
    draft_id: int,
    data: Mapping[str, Any],
    *,
    expected_version: int,
    keyring: Keyring,
) -> Draft:
    draft = await get_draft(person, draft_id)
    sealed = seal_data(keyring, "form_draft", draft.id, data)
    # A queryset update skips auto_now: the retention purge counts a draft's age from here.
    updated = await Draft.filter(id=draft.id, version=expected_version).update(
        data_sealed=sealed, version=expected_version + 1, updated_at=clock.now()
    )
    if updated == 0:
        raise StaleDraft(await get_draft(person, draft_id))
    return await get_draft(person, draft_id)


async def delete_draft(person: Person, draft_id: int) -> None:
    if await Draft.filter(id=draft_id, person_id=person.id).delete() == 0:
        raise DraftMissing


async def drafts_of(person: Person) -> list[Draft]:
    return (
        await Draft.filter(person_id=person.id).prefetch_related("taxpayer").order_by("-updated_at")
    )


def draft_data(keyring: Keyring, draft: Draft) -> dict[str, Any]:
    return open_data(keyring, "form_draft", draft.id, draft.data_sealed)
