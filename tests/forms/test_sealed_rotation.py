"""Key rotation covers filing's sealed columns too: form data of drafts and submissions and
attachment names end up under the newest key and still open."""

from __future__ import annotations

import json

from auth.models import Person
from auth.rotation import rotate_keys
from forms.models import Attachment, Draft, Submission
from forms.submissions import open_data, seal_data
from miniapp_api.database import SEALED_COLUMNS
from tests.auth.test_rotation import orm, ring, rotation_db  # noqa: F401 - fixtures

DATA = {"contact": {"name": "司徒轮换", "phone": "13911112222"}}


async def test_rotation_reseals_form_data_and_attachment_names(orm: str) -> None:  # noqa: F811
    old = ring("aes-256-gcm", "v1")
    person = await Person.create(id_type="resident_id")
    draft = await Draft.create(person=person, form_code="x", form_version=1, data_sealed="")
    draft.data_sealed = seal_data(old, "form_draft", draft.id, DATA)
    await draft.save()
    submission = await Submission.create(
        tracking_no="SB26-ROT",
        form_code="x",
        form_version=1,
        applicant=person,
        status="submitted",
        data_sealed="",
        idempotency_key="rot-key-1",
        body_hash="-",
        check_applicant="-",
    )
    submission.data_sealed = seal_data(old, "submission", submission.id, DATA)
    await submission.save()
    attachment = await Attachment.create(
        submission=submission,
        sha256="0" * 64,
        name_sealed="",
        size=1,
        content_type="image/png",
        uploaded_by_kind="mp",
    )
    attachment.name_sealed = old.seal(
        "司徒轮换.png", table="submission_attachment", column="name", row_id=attachment.id
    )
    await attachment.save()

    both = ring("aes-256-gcm", "v1", "v2")
    report = await rotate_keys(both, batch_size=10, sealed_columns=SEALED_COLUMNS)
    assert report.broken == []
    assert report.columns[("submission", "data_sealed")].resealed == 1
    assert report.columns[("form_draft", "data_sealed")].resealed == 1
    assert report.columns[("submission_attachment", "name_sealed")].resealed == 1

    newest = ring("aes-256-gcm", "v2")
    draft, submission = await Draft.get(id=draft.id), await Submission.get(id=submission.id)
    attachment = await Attachment.get(id=attachment.id)
    for sealed in (draft.data_sealed, submission.data_sealed, attachment.name_sealed):
        assert sealed.startswith("v2:")
    assert open_data(newest, "form_draft", draft.id, draft.data_sealed) == DATA
    assert open_data(newest, "submission", submission.id, submission.data_sealed) == DATA
    name = newest.open(
        attachment.name_sealed, table="submission_attachment", column="name", row_id=attachment.id
    )
    assert name == "司徒轮换.png"
    assert "司徒轮换" not in json.dumps([draft.data_sealed, submission.data_sealed])
