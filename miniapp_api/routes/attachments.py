"""Attachments of a submission: upload and download after an access check."""

from __future__ import annotations

from sanic import Blueprint

bp = Blueprint("mp_attachments", url_prefix="/mp")
