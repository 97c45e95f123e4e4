"""Staff review of submissions: queue, claim, approve, reject, return, complete."""

from __future__ import annotations

from sanic import Blueprint

bp = Blueprint("staff_review", url_prefix="/staff")
