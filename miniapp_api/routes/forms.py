"""The form catalogue: GET /forms, GET /forms/{code}."""

from __future__ import annotations

from sanic import Blueprint

bp = Blueprint("forms", url_prefix="/forms")
