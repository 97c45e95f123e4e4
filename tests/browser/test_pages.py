"""Serving the pages (no browser needed): paths, strict headers, no directory listing, the H5
preview only with the simulator, and no inline script or style anywhere in static/."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from miniapp_api.app import create_app
from miniapp_api.pages import CONTENT_SECURITY_POLICY, static_root
from miniapp_api.settings import Settings
from tests.conftest import LiveServer

PAGES = ["/console/", "/hall/liwan/display", "/h5/"]


@pytest.mark.parametrize("path", PAGES)
async def test_pages_answer_html_with_strict_headers(live: LiveServer, path: str) -> None:
    r = await live.http.get(path)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    assert r.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert "'unsafe-inline'" not in CONTENT_SECURITY_POLICY
    assert r.headers["x-frame-options"] == "DENY"
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["referrer-policy"] == "same-origin"


async def test_assets_are_served_with_their_type_and_nosniff(live: LiveServer) -> None:
    r = await live.http.get("/static/console/console.js")
    assert r.status_code == 200
    assert "javascript" in r.headers["content-type"]
    assert r.headers["x-content-type-options"] == "nosniff"


@pytest.mark.parametrize("path", ["/static/", "/static/console/", "/static/nothing.js"])
async def test_no_directory_listing_and_missing_files_are_404(live: LiveServer, path: str) -> None:
    r = await live.http.get(path)
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "NOT_FOUND"


def test_no_h5_preview_without_the_simulator(settings: Settings) -> None:
    app = create_app(
        dataclasses.replace(settings, simulator=False),
        name="suban_pages_no_sim",
        configure_logs=False,
    )
    paths = {route.path for route in app.router.routes}
    assert "console" in paths
    assert not any(path.startswith(("h5", "_sim")) for path in paths)


INLINE = [
    re.compile(r"<script(?![^>]*\bsrc=)[^>]*>", re.I),
    re.compile(r"<style", re.I),
    re.compile(r"\sstyle=", re.I),
    re.compile(r"\son[a-z]+=", re.I),
    re.compile(r"javascript:", re.I),
]


def test_static_pages_have_no_inline_script_or_style() -> None:
    pages = sorted(Path(static_root()).rglob("*.html"))
    assert len(pages) >= 3
    for page in pages:
        text = page.read_text(encoding="utf-8")
        for pattern in INLINE:
            assert not pattern.search(text), f"{page}: {pattern.pattern}"
