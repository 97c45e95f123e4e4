"""The WeCom OAuth callback reached by a browser navigation (issue 7, item 1): WeCom sends the
browser there, so it answers the static bridge page, with no-referrer and no-store, and consumes
nothing; the page's script then calls the same URL for JSON, as every other client does."""

from __future__ import annotations

import httpx
import pytest

from miniapp_api.pages import CONTENT_SECURITY_POLICY
from tests.conftest import LiveServer
from tests.wecom.test_oauth import callback, new_userid, start, wlive

__all__ = ["wlive"]

CALLBACK = "/wecom/oauth/callback"
# What Chromium sends when WeCom's redirect brings it to the callback.
NAVIGATION = {
    "Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
    "Sec-Fetch-Mode": "navigate",
    "Sec-Fetch-Dest": "document",
}
# What the bridge page's own fetch sends.
SCRIPT = {"Accept": "application/json", "Sec-Fetch-Mode": "cors", "Sec-Fetch-Dest": "empty"}


def assert_bridge_page(r: httpx.Response) -> None:
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/html")
    assert r.headers["referrer-policy"] == "no-referrer"
    assert r.headers["cache-control"] == "no-store"
    assert r.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert r.headers["x-frame-options"] == "DENY"
    assert "sec-fetch-mode" in r.headers["vary"].lower()
    assert '<script type="module" src="/static/wecom/oauth.js"></script>' in r.text
    assert "token" not in r.text


async def test_navigation_gets_the_page_and_leaves_state_and_code_for_the_script(
    wlive: LiveServer,
) -> None:
    state = await start(wlive, "/console/")
    params = {"code": f"sim:{new_userid()}", "state": state}

    page = await wlive.http.get(CALLBACK, params=params, headers=NAVIGATION)
    assert_bridge_page(page)

    # The state is still there: the script's call with the same code and state logs in.
    r = await wlive.http.get(CALLBACK, params=params, headers=SCRIPT)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/json")
    assert r.json()["next"] == "/console/"
    assert r.json()["token"].startswith("wecom_")
    # And then it is gone, as before.
    again = await wlive.http.get(CALLBACK, params=params, headers=SCRIPT)
    assert again.status_code == 400
    assert again.json()["error"]["code"] == "INVALID_STATE"


async def test_a_browser_without_fetch_metadata_is_told_by_its_accept(wlive: LiveServer) -> None:
    state = await start(wlive)
    params = {"code": f"sim:{new_userid()}", "state": state}
    page = await wlive.http.get(CALLBACK, params=params, headers={"Accept": NAVIGATION["Accept"]})
    assert_bridge_page(page)
    r = await callback(wlive, state, params["code"])
    assert r.status_code == 200, r.text


@pytest.mark.parametrize("query", [{}, {"code": "sim:x"}, {"state": "x" * 500}])
async def test_navigation_with_a_broken_query_still_gets_the_page(
    wlive: LiveServer, query: dict[str, str]
) -> None:
    # The script tells the person what went wrong; a JSON error would be a raw page again.
    page = await wlive.http.get(CALLBACK, params=query, headers=NAVIGATION)
    assert_bridge_page(page)


async def test_clients_sending_any_accept_still_get_json_that_no_cache_keeps(
    wlive: LiveServer,
) -> None:
    state = await start(wlive)
    r = await callback(wlive, state, f"sim:{new_userid()}")
    # httpx's default, like curl's and the fuzzer's.
    assert r.request.headers["accept"] == "*/*"
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/json")
    assert r.headers["cache-control"] == "no-store"
    assert "accept" in r.headers["vary"].lower()
    assert set(r.json()) == {"token", "expires_in", "bound", "next"}


async def test_a_fetch_asking_for_html_and_json_is_no_navigation(wlive: LiveServer) -> None:
    state = await start(wlive)
    r = await wlive.http.get(
        CALLBACK,
        params={"code": f"sim:{new_userid()}", "state": state},
        headers={"Accept": "text/html, application/json", "Sec-Fetch-Mode": "cors"},
    )
    assert r.status_code == 200, r.text
    assert "token" in r.json()


async def test_the_bridge_script_is_served(wlive: LiveServer) -> None:
    r = await wlive.http.get("/static/wecom/oauth.js")
    assert r.status_code == 200
    assert "javascript" in r.headers["content-type"]
    assert "suban.staff.token" in r.text
