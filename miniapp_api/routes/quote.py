"""POST /mp/invoice-quote: the proxy-invoice tax quote."""

from __future__ import annotations

from sanic import Blueprint

bp = Blueprint("mp_quote", url_prefix="/mp")
