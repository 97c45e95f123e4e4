"""Submissions of the mini-program: file, list, detail, resubmit, withdraw, receipt."""

from __future__ import annotations

from sanic import Blueprint

bp = Blueprint("mp_submissions", url_prefix="/mp")
