"""Browser tests: Playwright driving Debian's Chromium against the real app on a loopback port.

Everything here that needs a browser skips, with one plain reason, where ``/usr/bin/chromium``
or the ``playwright`` package is missing; CI installs both (``.ci/run``). Playwright's own
browser download is never used: there is no network to fetch it from.
"""

from __future__ import annotations

import importlib.util
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from playwright.async_api import Browser, Page, ViewportSize

try:
    from playwright.async_api import expect as expect
except ImportError:  # every browser test is skipped then (below)
    expect = None  # type: ignore[assignment]

CHROMIUM = Path("/usr/bin/chromium")
# PITFALLS.md: as root Chromium needs --no-sandbox; the rest keep it off the (closed) network.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SKIP_REASON = (
    "browser tests skipped: they need Debian's Chromium at /usr/bin/chromium "
    "(apt-get install -y chromium fonts-noto-cjk) and the playwright package (the dev extras)"
)
DESK: ViewportSize = {"width": 1280, "height": 800}
PHONE: ViewportSize = {"width": 375, "height": 812}


def browser_available() -> bool:
    return CHROMIUM.is_file() and importlib.util.find_spec("playwright") is not None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if browser_available():
        return
    skip = pytest.mark.skip(reason=SKIP_REASON)
    for item in items:
        if "browser" in getattr(item, "fixturenames", ()):
            item.add_marker(skip)


async def launch_chromium(playwright: Any) -> Browser:
    browser: Browser = await playwright.chromium.launch(
        executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
    )
    return browser


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        chromium = await launch_chromium(playwright)
        try:
            yield chromium
        finally:
            await chromium.close()


OpenPage = Callable[..., Awaitable["Page"]]


@pytest.fixture
async def open_page(browser: Browser) -> AsyncIterator[OpenPage]:
    """Opens a page in a fresh context and, at the end, fails the test on any script error or
    Content-Security-Policy violation the pages caused."""
    problems: list[str] = []

    async def opener(url: str, viewport: ViewportSize | None = None) -> Page:
        context = await browser.new_context(viewport=viewport or DESK, locale="zh-CN")
        page = await context.new_page()
        page.on("pageerror", lambda error: problems.append(f"script error: {error}"))
        page.on(
            "console",
            lambda message: (
                problems.append(f"console: {message.text}")
                if "Content Security Policy" in message.text
                else None
            ),
        )
        await page.goto(url)
        return page

    yield opener
    assert not problems, problems
