"""Public progress lookup (文书进度查询) by tracking number and check."""

from __future__ import annotations

from sanic import Blueprint

bp = Blueprint("progress")
