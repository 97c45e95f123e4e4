"""The public progress lookup (文书进度查询): its answer, cached in Redis per tracking number.

The lookup is the busiest public route (people refresh it), so its answer is kept in Redis next to
the keyed hashes that check the asker: a lookup is one Redis round trip, no SQL. Every status
change rewrites the entry after its commit (:func:`refresh`); a lookup that misses loads from the
database and writes only if nobody wrote meanwhile (``SET NX``), so a slow reader never puts an
older status over a newer one. Should a refresh be lost (Redis down at that moment), the entry
expires after ``CACHE_SECONDS``.
"""

from __future__ import annotations

import hmac
import json
import logging
from collections.abc import Sequence
from typing import Any

from auth.pii import Keyring
from forms.catalogue import catalogue
from forms.lifecycle import STATUS_LABELS
from forms.models import Submission, SubmissionEvent
from forms.submissions import check_index

log = logging.getLogger("suban.progress")

CACHE_SECONDS = 300
PREFIX = "suban:progress:"


def cache_key(tracking_no: str) -> str:
    return PREFIX + tracking_no


def _title(code: str) -> str:
    spec = catalogue().get(code)
    return spec.title if spec is not None else code


async def public_entry(
    submission: Submission, timeline: Sequence[SubmissionEvent] | None = None
) -> dict[str, Any]:
    """What the cache holds: the checks and the public answer (timeline notes left out: a
    company's taxpayer id is public, so this check is weaker than a login). ``timeline``, when
    the caller holds the whole of it (a filing just written), saves reading it back."""
    events = (
        timeline
        if timeline is not None
        else await SubmissionEvent.filter(submission_id=submission.id).order_by("id")
    )
    return {
        "checks": [c for c in (submission.check_applicant, submission.check_taxpayer) if c],
        "view": {
            "tracking_no": submission.tracking_no,
            "form_title": _title(submission.form_code),
            "status": submission.status,
            "status_label": STATUS_LABELS.get(submission.status, submission.status),
            "timeline": [
                {
                    "status": e.status,
                    "status_label": STATUS_LABELS.get(e.status, e.status),
                    "action": e.action,
                    "at": e.at.isoformat(),
                    "actor_kind": e.actor_kind,
                    "note": None,
                }
                for e in events
            ],
        },
    }


def _dump(entry: dict[str, Any]) -> str:
    return json.dumps(entry, ensure_ascii=False, separators=(",", ":"))


async def refresh(
    redis: Any, submission: Submission, timeline: Sequence[SubmissionEvent] | None = None
) -> None:
    """Rewrite the cached entry after a change committed (``timeline``: the submission's whole
    timeline, when the caller has it). Never raises: the entry's expiry is the fallback, and the
    change itself is already safe in the database."""
    try:
        entry = await public_entry(submission, timeline)
        await redis.set(cache_key(submission.tracking_no), _dump(entry), ex=CACHE_SECONDS)
    except Exception:
        log.warning("progress cache not refreshed for submission %s", submission.id, exc_info=True)


async def load(redis: Any, tracking_no: str, cached: bytes | str | None) -> dict[str, Any] | None:
    """The entry from what the caller already read from Redis, or from the database."""
    if cached is not None:
        entry: dict[str, Any] = json.loads(cached)
        return entry
    submission = await Submission.get_or_none(tracking_no=tracking_no)
    if submission is None:
        return None
    entry = await public_entry(submission)
    await redis.set(cache_key(tracking_no), _dump(entry), ex=CACHE_SECONDS, nx=True)
    return entry


def fits(entry: dict[str, Any], tracking_no: str, check: str, keyring: Keyring) -> bool:
    """Whether ``check`` is the last four characters of the applicant's ID number or of the
    taxpayer id, compared in constant time."""
    asked = check_index(keyring, tracking_no, check)
    return any(hmac.compare_digest(asked, known) for known in entry["checks"])
