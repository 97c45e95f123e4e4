"""HTTP routes, grouped by audience the way API.md groups them; all under ``/api/v1``."""

from __future__ import annotations

from sanic import Blueprint

from miniapp_api.routes import (
    attachments,
    drafts,
    forms,
    grants,
    halls,
    mp,
    progress,
    quote,
    staff,
    staff_audit,
    staff_grants,
    staff_review,
    submissions,
)


def api_group() -> Blueprint:
    """One blueprint per audience; a group keeps the URL tree the same shape as this folder."""
    return Blueprint.group(  # type: ignore[return-value]
        halls.bp,
        mp.bp,
        grants.bp,
        forms.bp,
        quote.bp,
        drafts.bp,
        submissions.bp,
        attachments.bp,
        progress.bp,
        staff.bp,
        staff_grants.bp,
        staff_review.bp,
        staff_audit.bp,
        url_prefix="/api/v1",
    )
