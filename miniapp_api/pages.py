"""The web pages (API.md, "Web pages"): the staff console, the hall display and, with the simulator
on, the H5 preview of the mini-program flows; plain files from ``static/`` with strict headers.

The pages hold no data: each one is a shell whose script calls the JSON API of the same origin.
"""

from __future__ import annotations

import sys
from pathlib import Path

from sanic import Blueprint, HTTPResponse, Request
from sanic.handlers.directory import DirectoryHandler
from sanic.response import file

from miniapp_api.context import SubanApp
from miniapp_api.errors import NotFound
from miniapp_api.settings import Settings

# No inline script or style anywhere in static/: a script injected into a page cannot run, and
# nobody may frame the console to trick a reviewer into a click.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "connect-src 'self' ws: wss:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}
# A page must be asked for again after a deploy; its assets may be kept a little while.
PAGE_CACHE = "no-cache"
ASSET_CACHE = "public, max-age=300"
HALL_ID_PATTERN = r"[A-Za-z0-9_-]{1,32}"
# The page a browser lands on back from WeCom OAuth: its address holds the one-time code and
# state, so no Referer may carry them anywhere and no cache may keep the page.
OAUTH_BRIDGE_PAGE = "wecom/oauth.html"
OAUTH_BRIDGE_HEADERS = SECURITY_HEADERS | {
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


def static_root() -> Path:
    """Where static/ is: beside the packages in a checkout (editable install, tests, make run),
    or under the virtualenv's prefix where deploy/Dockerfile copies it for an installed package."""
    checkout = Path(__file__).resolve().parents[1] / "static"
    if (checkout / "console" / "index.html").is_file():
        return checkout
    return Path(sys.prefix) / "static"


async def oauth_bridge_page(extra_headers: dict[str, str] | None = None) -> HTTPResponse:
    """The static page that finishes a WeCom OAuth login in the browser (static/wecom/oauth.js):
    served by the OAuth callback route itself to a browser navigation, with the pages' headers
    tightened for an address that holds a one-time code."""
    response = await file(static_root() / OAUTH_BRIDGE_PAGE, mime_type="text/html; charset=utf-8")
    # Set on the response's own headers, which ignore case: file() has put in "cache-control"
    # already, and a plain dict would send both.
    for name, value in (OAUTH_BRIDGE_HEADERS | (extra_headers or {})).items():
        response.headers[name] = value
    return response


class NoDirectories(DirectoryHandler):
    """A directory under /static/ is simply not found: Sanic's own fallback for a directory
    without a listing raises IsADirectoryError, which would answer 500."""

    async def handle(self, request: Request, path: str) -> HTTPResponse:
        raise NotFound()


def setup_pages(app: SubanApp, settings: Settings, root: Path | None = None) -> None:
    """Mount the pages and ``/static/``. ``/h5/`` only with the simulator on: it is a demo of
    the mini-program against simulated WeChat logins, not a page for production."""
    root = root or static_root()
    bp = Blueprint("pages")
    bp.static("/static", root, name="static", directory_handler=NoDirectories("/static", root))

    async def page(relative: str) -> HTTPResponse:
        return await file(root / relative, mime_type="text/html; charset=utf-8")

    # Sanic's default (no strict slashes) answers "/console" with the same page.
    @bp.get("/console/", name="console")
    async def console(request: Request) -> HTTPResponse:
        return await page("console/index.html")

    @bp.get(f"/hall/<hall_id:{HALL_ID_PATTERN}>/display", name="hall_display")
    async def hall_display(request: Request, hall_id: str) -> HTTPResponse:
        # The script reads the hall from the path and says so itself when the hall is unknown.
        return await page("hall/display.html")

    if settings.simulator:

        @bp.get("/h5/", name="h5")
        async def h5(request: Request) -> HTTPResponse:
            return await page("h5/index.html")

    async def secure(request: Request, response: HTTPResponse) -> None:
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        is_asset = request.path.startswith("/static/") and response.status == 200
        response.headers.setdefault("Cache-Control", ASSET_CACHE if is_asset else PAGE_CACHE)

    bp.middleware(secure, "response")

    app.blueprint(bp)
