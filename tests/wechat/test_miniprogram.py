"""MiniProgramClient against the simulator over loopback TCP."""

from __future__ import annotations

import pytest

from tests.wechat.conftest import SimControl, make_miniprogram
from wechat import (
    AccessTokenExpired,
    FetchedToken,
    FrequencyLimited,
    InvalidCode,
    InvalidCredential,
    MiniProgramClient,
    OtherWeChatError,
    RedisTokenStore,
    TokenKey,
    Transport,
    face_digest,
)


async def test_code2session_returns_the_openid(miniprogram: MiniProgramClient) -> None:
    first = await miniprogram.code2session("sim:o-alice")
    second = await miniprogram.code2session("sim:o-alice")
    assert first.openid == "o-alice"
    assert first.unionid is not None
    assert first.unionid == second.unionid
    assert first.session_key != second.session_key
    assert first.session_key not in repr(first)


async def test_code2session_bad_code_is_invalid_code(
    miniprogram: MiniProgramClient, sim: SimControl
) -> None:
    with pytest.raises(InvalidCode) as caught:
        await miniprogram.code2session("not-a-sim-code")
    assert caught.value.errcode == 40029
    assert (await sim.counters())["jscode2session"] == 1


async def test_rate_limit_is_typed_and_not_retried(
    miniprogram: MiniProgramClient, sim: SimControl
) -> None:
    await sim.fault("jscode2session", "errcode", errcode=45011)
    with pytest.raises(FrequencyLimited) as caught:
        await miniprogram.code2session("sim:o-alice")
    assert caught.value.errcode == 45011
    assert (await sim.counters())["jscode2session"] == 1


async def test_wrong_secret_is_a_credential_error(
    sim: SimControl, simulator_url: str, transport: Transport, token_store: RedisTokenStore
) -> None:
    client = make_miniprogram(simulator_url, transport, token_store, secret="wrong")
    with pytest.raises(InvalidCredential) as caught:
        await client.code2session("sim:o-alice")
    assert caught.value.errcode == 40125
    with pytest.raises(InvalidCredential):
        await client.get_phone_number("sim:13800138000")
    assert (await sim.counters())["getuserphonenumber"] == 0


async def test_phone_number(miniprogram: MiniProgramClient, sim: SimControl) -> None:
    phone = await miniprogram.get_phone_number("sim:13800138000")
    assert phone.phone_number == "13800138000"
    assert phone.pure_phone_number == "13800138000"
    assert phone.country_code == "86"
    assert "13800138000" not in repr(phone)
    await miniprogram.get_phone_number("sim:13900139000")
    counters = await sim.counters()
    assert counters["stable_token"] == 1, "the token is cached between calls"
    assert counters["getuserphonenumber"] == 2


async def test_phone_bad_code(miniprogram: MiniProgramClient) -> None:
    with pytest.raises(InvalidCode):
        await miniprogram.get_phone_number("sim:138")


async def test_face_verify_result_matches_name_and_id(miniprogram: MiniProgramClient) -> None:
    result = await miniprogram.get_face_verify_result("sim:陈明:44010319850612301X:o-chen")
    assert result.passed
    assert result.openid == "o-chen"
    assert result.name_utf8_md5 == face_digest("陈明")
    assert len(result.id_card_number_md5) == 32
    assert result.matches("陈明", "44010319850612301X")
    assert result.matches(" 陈明", "44010319850612301x"), "the check letter compares upper-cased"
    assert not result.matches("林芳", "44010319850612301X")
    assert not result.matches("陈明", "440103199003152024")


async def test_face_verify_bad_result(miniprogram: MiniProgramClient) -> None:
    with pytest.raises(InvalidCode) as caught:
        await miniprogram.get_face_verify_result("forged")
    assert caught.value.errcode == 84001


async def test_subscribe_message_is_delivered(
    miniprogram: MiniProgramClient, sim: SimControl
) -> None:
    await miniprogram.send_subscribe_message(
        "o-alice", "tmpl-progress", {"thing1": "代开发票", "phrase2": "已通过"}, page="pages/me"
    )
    [sent] = await sim.messages("subscribe")
    assert sent["body"]["touser"] == "o-alice"
    assert sent["body"]["page"] == "pages/me"
    assert sent["body"]["data"] == {"thing1": {"value": "代开发票"}, "phrase2": {"value": "已通过"}}


async def test_unlimited_wxacode_is_an_image(miniprogram: MiniProgramClient) -> None:
    image = await miniprogram.get_unlimited_wxacode("guide=invoice", page="pages/guide", width=280)
    other = await miniprogram.get_unlimited_wxacode("guide=filing", page="pages/guide", width=280)
    assert image.startswith(b"\x89PNG\r\n\x1a\n")
    assert image != other


async def test_unlimited_wxacode_error_comes_as_json(miniprogram: MiniProgramClient) -> None:
    with pytest.raises(OtherWeChatError) as caught:
        await miniprogram.get_unlimited_wxacode("x" * 33)
    assert caught.value.errcode == 40169


async def test_expired_token_is_refreshed_and_the_call_retried_once(
    miniprogram: MiniProgramClient, sim: SimControl
) -> None:
    await miniprogram.get_phone_number("sim:13800138000")
    await sim.expire_tokens()
    phone = await miniprogram.get_phone_number("sim:13800138001")
    assert phone.phone_number == "13800138001"
    counters = await sim.counters()
    assert counters["stable_token"] == 2
    assert counters["getuserphonenumber"] == 3


async def test_unknown_cached_token_is_replaced(
    miniprogram: MiniProgramClient, sim: SimControl, token_store: RedisTokenStore
) -> None:
    # A cached token Tencent no longer knows (40001), e.g. one another system force-refreshed.
    async def seed() -> FetchedToken:
        return FetchedToken("sim-miniprogram-unknown", 7200)

    await token_store.get(TokenKey("miniprogram", miniprogram.appid), seed)
    phone = await miniprogram.get_phone_number("sim:13800138000")
    assert phone.phone_number == "13800138000"
    counters = await sim.counters()
    assert counters["stable_token"] == 1
    assert counters["getuserphonenumber"] == 2


async def test_a_second_token_failure_is_raised_not_looped(
    miniprogram: MiniProgramClient, sim: SimControl
) -> None:
    await sim.fault("getuserphonenumber", "errcode", count=5, errcode=42001)
    with pytest.raises(AccessTokenExpired):
        await miniprogram.get_phone_number("sim:13800138000")
    counters = await sim.counters()
    assert counters["getuserphonenumber"] == 2
    assert counters["stable_token"] == 2
