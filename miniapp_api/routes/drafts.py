"""Drafts: save and resume a form with a version."""

from __future__ import annotations

from sanic import Blueprint

bp = Blueprint("mp_drafts", url_prefix="/mp")
