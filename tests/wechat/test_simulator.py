"""The simulator's own contract: Tencent-shaped answers and error codes, the control API, and
mounting its blueprint group inside another app under a prefix (as dev mode does)."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sanic import Sanic

from tests.processes import free_port, serving_in_loop
from tests.wechat.conftest import SIM, SimControl
from wechat.simulator import (
    SimulatorConfig,
    SimulatorState,
    create_simulator_app,
    create_simulator_blueprint,
)


@pytest.fixture
async def http(simulator_url: str, sim: SimControl) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=simulator_url, timeout=10, trust_env=False) as client:
        yield client


async def stable_token(http: httpx.AsyncClient, **overrides: Any) -> dict[str, Any]:
    body = {
        "grant_type": "client_credential",
        "appid": SIM.appid,
        "secret": SIM.secret,
        "force_refresh": False,
    }
    response = await http.post("/wechat/cgi-bin/stable_token", json=body | overrides)
    data: dict[str, Any] = response.json()
    return data


async def test_stable_token_is_stable_while_valid(http: httpx.AsyncClient) -> None:
    first = await stable_token(http)
    second = await stable_token(http)
    assert "errcode" not in first
    assert first["access_token"] == second["access_token"]
    assert first["expires_in"] == 7200
    assert 7190 <= second["expires_in"] <= 7200


@pytest.mark.parametrize(
    ("overrides", "errcode"),
    [({"appid": "wx-other"}, 40013), ({"secret": "guess"}, 40125), ({"grant_type": "x"}, 40002)],
)
async def test_stable_token_rejects_bad_credentials(
    http: httpx.AsyncClient, overrides: dict[str, str], errcode: int
) -> None:
    answer = await stable_token(http, **overrides)
    assert answer["errcode"] == errcode
    assert "access_token" not in answer


async def test_token_checks_follow_each_api(http: httpx.AsyncClient, sim: SimControl) -> None:
    phone = "/wechat/wxa/business/getuserphonenumber"
    body = {"code": "sim:13800138000"}
    missing = (await http.post(phone, json=body)).json()
    unknown = (await http.post(phone, params={"access_token": "nope"}, json=body)).json()
    wecom_unknown = (
        await http.get("/wecom/cgi-bin/auth/getuserinfo", params={"access_token": "nope"})
    ).json()
    token = (await stable_token(http))["access_token"]
    wrong_api = (
        await http.get("/wecom/cgi-bin/auth/getuserinfo", params={"access_token": token})
    ).json()
    valid = (await http.post(phone, params={"access_token": token}, json=body)).json()
    await sim.expire_tokens()
    expired = (await http.post(phone, params={"access_token": token}, json=body)).json()
    assert missing["errcode"] == 41001
    assert unknown["errcode"] == 40001
    assert wecom_unknown["errcode"] == 40014
    assert wrong_api["errcode"] == 40014
    assert valid["errcode"] == 0
    assert valid["phone_info"]["countryCode"] == "86"
    assert expired["errcode"] == 42001
    # An expired token is replaced by a new one, not handed out again.
    assert (await stable_token(http))["access_token"] != token


@pytest.mark.parametrize(
    ("api", "path"),
    [
        ("wechat", "/wechat/cgi-bin/stable_token"),
        ("wechat", "/wechat/wxa/business/getuserphonenumber"),
        ("wechat", "/wechat/cityservice/face/identify/getinfo"),
        ("wechat", "/wechat/cgi-bin/message/subscribe/send"),
        ("wechat", "/wechat/wxa/getwxacodeunlimit"),
        ("wecom", "/wecom/cgi-bin/message/send"),
        ("wecom", "/wecom/cgi-bin/oa/applyevent"),
        ("wecom", "/wecom/cgi-bin/oa/getapprovaldetail"),
    ],
)
@pytest.mark.parametrize("raw", [b"{not json", b"[1, 2]"])
async def test_a_body_that_is_not_a_json_object_is_47001(
    http: httpx.AsyncClient, api: str, path: str, raw: bytes
) -> None:
    if api == "wechat":
        token = (await stable_token(http))["access_token"]
    else:
        params = {"corpid": SIM.corp_id, "corpsecret": SIM.corp_secret}
        token = (await http.get("/wecom/cgi-bin/gettoken", params=params)).json()["access_token"]
    params = {} if path.endswith("stable_token") else {"access_token": token}
    response = await http.post(
        path, params=params, content=raw, headers={"content-type": "application/json"}
    )
    assert response.json()["errcode"] == 47001


async def test_wecom_gettoken_errors(http: httpx.AsyncClient) -> None:
    async def gettoken(**params: str) -> int:
        errcode: int = (await http.get("/wecom/cgi-bin/gettoken", params=params)).json()["errcode"]
        return errcode

    assert await gettoken(corpid="ww-other", corpsecret=SIM.corp_secret) == 40013
    assert await gettoken(corpid=SIM.corp_id, corpsecret="guess") == 40001
    assert await gettoken(corpsecret=SIM.corp_secret) == 41002
    assert await gettoken(corpid=SIM.corp_id, corpsecret=SIM.corp_secret) == 0


async def test_face_digests_are_lowercase_md5(http: httpx.AsyncClient) -> None:
    token = (await stable_token(http))["access_token"]
    answer = (
        await http.post(
            "/wechat/cityservice/face/identify/getinfo",
            params={"access_token": token},
            json={"verify_result": "sim:林芳:44010319900315202x"},
        )
    ).json()
    assert answer["identify_ret"] == 0
    assert answer["name_utf8_md5"] == hashlib.md5("林芳".encode()).hexdigest()  # noqa: S324
    assert answer["id_card_number_md5"] == hashlib.md5(b"44010319900315202X").hexdigest()  # noqa: S324


async def test_counters_count_every_call_and_reset_clears_them(
    http: httpx.AsyncClient, sim: SimControl
) -> None:
    await sim.fault("stable_token", "http", status=503)
    assert (await http.post("/wechat/cgi-bin/stable_token", json={})).status_code == 503
    assert "access_token" in await stable_token(http)
    counters = await sim.counters()
    assert counters["stable_token"] == 2
    assert set(counters) >= {"jscode2session", "gettoken", "applyevent"}
    await sim.reset()
    assert set((await sim.counters()).values()) == {0}


@pytest.mark.parametrize(
    "body",
    [
        {"endpoint": "nope", "kind": "drop"},
        {"endpoint": "gettoken", "kind": "explode"},
        {"endpoint": "gettoken", "kind": "http", "status": 200},
    ],
)
async def test_control_rejects_bad_faults(http: httpx.AsyncClient, body: dict[str, Any]) -> None:
    response = await http.post("/control/faults", json=body)
    assert response.status_code == 400
    assert "error" in response.json()


async def test_control_rejects_a_bad_callback_key(http: httpx.AsyncClient) -> None:
    response = await http.put(
        "/control/callback", json={"url": "http://127.0.0.1:1/cb", "token": "t", "aes_key": "x"}
    )
    assert response.status_code == 400


async def test_blueprint_mounts_under_a_prefix_in_another_app() -> None:
    state = SimulatorState()
    app: Sanic[Any, Any] = Sanic("wechat_test_host_app")
    app.config.AUTO_EXTEND = False
    app.blueprint(create_simulator_blueprint(state, SimulatorConfig()), url_prefix="/_sim")
    port = free_port()
    async with (
        serving_in_loop(app, "127.0.0.1", port) as base,
        httpx.AsyncClient(base_url=base, trust_env=False) as c,
    ):
        login = await c.get(
            "/_sim/wechat/sns/jscode2session",
            params={"appid": SIM.appid, "secret": SIM.secret, "js_code": "sim:o-dev"},
        )
        token = await c.get(
            "/_sim/wecom/cgi-bin/gettoken",
            params={"corpid": SIM.corp_id, "corpsecret": SIM.corp_secret},
        )
        counters = await c.get("/_sim/control/counters")
    assert login.json()["openid"] == "o-dev"
    assert token.json()["errcode"] == 0
    assert counters.json()["counters"]["jscode2session"] == 1
    assert state.counters["gettoken"] == 1, "the state object passed in is the one used"


def test_standalone_apps_get_unique_names() -> None:
    first = create_simulator_app()
    second = create_simulator_app()
    assert first.name != second.name
    assert {r.path for r in first.router.routes} >= {"wechat/sns/jscode2session"}
