"""Cross-origin browser access (CORS): none unless ``SUBAN_CORS_ORIGINS`` lists origins.

The mini-program is no browser page (WeChat's own networking sends no ``Origin`` and obeys no CORS)
and the staff console, the hall screen and the H5 preview are served by this app, same-origin. So
by default the app sends no ``Access-Control-*`` header at all and a page of another origin cannot
read any answer; nothing is registered either, so /healthz pays nothing for it.

With origins listed (a separately hosted front end), sanic-ext's CORS answers exactly those
origins, each matched whole: the answer names the request's origin, never ``*``, and never allows
credentials (the API authenticates with a bearer token, not cookies, so a browser has nothing to
send on its own). Preflights are answered by sanic-ext's automatic OPTIONS routes.
"""

from __future__ import annotations

import re
from typing import Any

from sanic import Sanic

from miniapp_api.settings import Settings

ALLOWED_HEADERS = ("authorization", "content-type", "idempotency-key", "x-request-id")
ALLOWED_METHODS = ("GET", "POST", "PUT", "DELETE")
# What a cross-origin script may read besides the simple headers: the rate limits' wait and the
# id to quote when reporting a problem.
EXPOSED_HEADERS = ("retry-after", "x-request-id")
# Seconds a browser may reuse a preflight's answer (Chromium caps this at 7200).
MAX_AGE = 600


def origin_patterns(origins: tuple[str, ...]) -> list[re.Pattern[str]]:
    """Each origin matched whole and literally (``re.escape``; ``\\Z``, not ``$``, so a trailing
    newline does not match either)."""
    return [re.compile(re.escape(origin) + r"\Z") for origin in origins]


def setup_cors(app: Sanic[Any, Any], settings: Settings) -> None:
    """Configure sanic-ext's CORS from the settings. Call before ``app.extend`` (setup_openapi):
    sanic-ext reads these keys when it starts, and the app's config wins over the defaults
    ``extend`` is given."""
    config = app.config
    config.CORS = bool(settings.cors_origins)
    if not settings.cors_origins:
        return
    config.CORS_ORIGINS = origin_patterns(settings.cors_origins)
    config.CORS_ALLOW_HEADERS = ",".join(ALLOWED_HEADERS)
    config.CORS_METHODS = ",".join(ALLOWED_METHODS)
    config.CORS_EXPOSE_HEADERS = ",".join(EXPOSED_HEADERS)
    config.CORS_MAX_AGE = MAX_AGE
    config.CORS_SUPPORTS_CREDENTIALS = False
    # No Origin header, no CORS header: nothing is sent to clients that did not ask.
    config.CORS_ALWAYS_SEND = False
    config.CORS_SEND_WILDCARD = False
    config.CORS_VARY_HEADER = True
    # Preflights (OPTIONS) are answered by routes sanic-ext adds for every path.
    config.CORS_AUTOMATIC_OPTIONS = True
    config.HTTP_AUTO_OPTIONS = True
