"""The simulator's stand-in for WeCom's OAuth authorize page: a userid form, then the redirect
back with ``code=sim:<userid>`` and the state; hostile input is escaped or refused."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from tests.wechat.conftest import SIM, SimControl
from wechat import WeComClient

PAGE = "/wecom/connect/oauth2/authorize"


def authorize_params(**overrides: str) -> dict[str, str]:
    params = {
        "appid": SIM.corp_id,
        "redirect_uri": "http://127.0.0.1:8000/wecom/oauth/callback",
        "response_type": "code",
        "scope": "snsapi_base",
        "agentid": str(SIM.agent_id),
        "state": "st-123",
    }
    return params | overrides


async def test_page_shows_a_userid_form_carrying_the_request(sim: SimControl) -> None:
    page = await sim.http.get(PAGE, params=authorize_params())
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "default-src 'none'" in page.headers["content-security-policy"]
    assert 'name="userid"' in page.text
    assert '<input type="hidden" name="state" value="st-123">' in page.text
    assert (
        '<input type="hidden" name="redirect_uri" '
        'value="http://127.0.0.1:8000/wecom/oauth/callback">' in page.text
    )


async def test_submitted_userid_redirects_back_with_a_code_getuserinfo_accepts(
    sim: SimControl, wecom: WeComClient
) -> None:
    params = authorize_params(redirect_uri="https://app.example/cb?from=wecom#top")
    answer = await sim.http.get(PAGE, params=params | {"userid": "zhang.san@corp"})
    assert answer.status_code == 302
    location = urlsplit(answer.headers["location"])
    assert (location.scheme, location.netloc, location.path) == ("https", "app.example", "/cb")
    assert location.fragment == "top"
    query = parse_qs(location.query)
    assert query == {"from": ["wecom"], "code": ["sim:zhang.san@corp"], "state": ["st-123"]}
    identity = await wecom.get_user_info(query["code"][0])
    assert identity.userid == "zhang.san@corp"


async def test_values_are_escaped_in_the_page(sim: SimControl) -> None:
    hostile = '"><script>alert(1)</script>'
    page = await sim.http.get(
        PAGE, params=authorize_params(state=hostile, redirect_uri=f"http://a.example/{hostile}")
    )
    assert page.status_code == 200
    assert "<script>" not in page.text
    assert "&lt;script&gt;" in page.text
    assert "&quot;&gt;" in page.text


@pytest.mark.parametrize(
    "redirect_uri",
    ["javascript:alert(1)", "//evil.example/cb", "/wecom/oauth/callback", "ftp://a.example/", ""],
)
async def test_only_absolute_http_redirects_are_served(sim: SimControl, redirect_uri: str) -> None:
    page = await sim.http.get(
        PAGE, params=authorize_params(redirect_uri=redirect_uri) | {"userid": "zhangsan"}
    )
    assert page.status_code == 400
    assert "location" not in page.headers
    assert 'name="userid"' not in page.text


async def test_wrong_appid_and_bad_userid_are_refused(sim: SimControl) -> None:
    wrong = await sim.http.get(PAGE, params=authorize_params(appid="ww-other"))
    assert wrong.status_code == 400
    bad = await sim.http.get(PAGE, params=authorize_params() | {"userid": "a b<"})
    assert bad.status_code == 400
    assert "location" not in bad.headers
    assert 'name="userid"' in bad.text, "the form is shown again"
