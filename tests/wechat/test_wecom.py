"""WeComClient against the simulator, including the approval round trip and its callback."""

from __future__ import annotations

import asyncio
import base64
import re
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from wechatpy.enterprise.crypto import WeChatCrypto
from wechatpy.exceptions import InvalidSignatureException

from tests.wechat.conftest import SIM, CallbackReceiver, SimControl, make_wecom
from wechat import (
    InvalidCode,
    InvalidCredential,
    OtherWeChatError,
    RedisTokenStore,
    Transport,
    WeComClient,
)

CALLBACK_TOKEN = "suban-callback-token"
CALLBACK_AES_KEY = base64.b64encode(b"k" * 32).decode().rstrip("=")


def application(creator: str = "clerk-li") -> dict[str, Any]:
    return {
        "creator_userid": creator,
        "template_id": "tmpl-proxy-invoice",
        "use_template_approver": 0,
        "approver": [{"attr": 2, "userid": ["finance-lin", "boss-chen"]}],
        "notifyer": ["clerk-li"],
        "notify_type": 1,
        "apply_data": {
            "contents": [
                {
                    "control": "Text",
                    "id": "Text-1",
                    "title": [{"text": "申请事项", "lang": "zh_CN"}],
                    "value": {"text": "代开增值税发票 SB2026000123"},
                }
            ]
        },
        "summary_list": [{"summary_info": [{"text": "代开发票申请", "lang": "zh_CN"}]}],
    }


async def test_oauth_code_of_a_member(wecom: WeComClient) -> None:
    identity = await wecom.get_user_info("sim:zhangsan")
    assert identity.is_member
    assert identity.userid == "zhangsan"
    assert identity.openid is None


async def test_oauth_code_of_a_non_member(wecom: WeComClient) -> None:
    identity = await wecom.get_user_info("sim-guest:o-outsider")
    assert not identity.is_member
    assert identity.openid == "o-outsider"


async def test_oauth_bad_code(wecom: WeComClient) -> None:
    with pytest.raises(InvalidCode):
        await wecom.get_user_info("guess")


async def test_wrong_corp_secret_is_a_credential_error(
    sim: SimControl, simulator_url: str, transport: Transport, token_store: RedisTokenStore
) -> None:
    client = make_wecom(simulator_url, transport, token_store, secret="wrong")
    with pytest.raises(InvalidCredential) as caught:
        await client.get_user_info("sim:zhangsan")
    assert caught.value.errcode == 40001
    counters = await sim.counters()
    assert counters["gettoken"] == 1, "a bad secret is not retried as if it were a stale token"
    assert counters["getuserinfo"] == 0


async def test_send_message(wecom: WeComClient, sim: SimControl) -> None:
    result = await wecom.send_message(["finance-lin", "boss-chen"], "text", {"content": "待审批"})
    assert result.msgid
    assert result.invalid_users == ()
    [sent] = await sim.messages("wecom")
    assert sent["body"]["touser"] == "finance-lin|boss-chen"
    assert sent["body"]["agentid"] == SIM.agent_id
    assert sent["body"]["text"] == {"content": "待审批"}


async def test_expired_token_is_refreshed_for_wecom(wecom: WeComClient, sim: SimControl) -> None:
    await wecom.get_user_info("sim:zhangsan")
    await sim.expire_tokens()
    assert (await wecom.get_user_info("sim:lisi")).userid == "lisi"
    counters = await sim.counters()
    assert counters["gettoken"] == 2
    assert counters["getuserinfo"] == 3


async def test_approval_recorded_then_approved(wecom: WeComClient, sim: SimControl) -> None:
    sp_no = await wecom.apply_event(application())
    pending = await wecom.get_approval_detail(sp_no)
    assert pending["sp_status"] == 1
    assert pending["applyer"]["userid"] == "clerk-li"
    assert pending["apply_data"] == application()["apply_data"]

    decided = await sim.decide(sp_no, "approve", approver="finance-lin", speech="同意")
    assert decided["callback"] == {"sent": False}

    approved = await wecom.get_approval_detail(sp_no)
    assert approved["sp_status"] == 2
    details = approved["sp_record"][0]["details"]
    assert {d["approver"]["userid"] for d in details} == {"finance-lin", "boss-chen"}
    assert next(d for d in details if d["approver"]["userid"] == "finance-lin")["speech"] == "同意"


async def test_approval_rejected(wecom: WeComClient, sim: SimControl) -> None:
    sp_no = await wecom.apply_event(application())
    await sim.decide(sp_no, "reject", speech="金额有误")
    assert (await wecom.get_approval_detail(sp_no))["sp_status"] == 3
    again = await sim.http.post(f"/control/approvals/{sp_no}/approve", json={})
    assert again.status_code == 409


async def test_apply_event_requires_its_fields(wecom: WeComClient) -> None:
    incomplete = application()
    del incomplete["apply_data"]
    with pytest.raises(OtherWeChatError) as caught:
        await wecom.apply_event(incomplete)
    assert caught.value.errcode == 40058


async def test_unknown_approval(wecom: WeComClient) -> None:
    with pytest.raises(OtherWeChatError):
        await wecom.get_approval_detail("209901010001")


async def test_decision_is_pushed_encrypted_and_signed(
    wecom: WeComClient, sim: SimControl, callback_receiver: CallbackReceiver
) -> None:
    await sim.set_callback(callback_receiver.url, CALLBACK_TOKEN, CALLBACK_AES_KEY)
    sp_no = await wecom.apply_event(application())
    decided = await sim.decide(sp_no, "approve")
    assert decided["callback"]["status"] == 200
    assert decided["callback"]["body"] == "success"

    received = await asyncio.wait_for(callback_receiver.received.get(), timeout=5)
    assert received.method == "POST"
    url = urlsplit(received.target)
    assert url.path == "/wecom/callback"
    query = {name: values[0] for name, values in parse_qs(url.query).items()}
    crypto = WeChatCrypto(CALLBACK_TOKEN, CALLBACK_AES_KEY, SIM.corp_id)
    plaintext = crypto.decrypt_message(
        received.body.decode(), query["msg_signature"], query["timestamp"], query["nonce"]
    )
    assert "<Event><![CDATA[sys_approval_change]]></Event>" in plaintext
    assert f"<SpNo>{sp_no}</SpNo>" in plaintext
    assert re.search(r"<ApprovalInfo>.*<SpStatus>2</SpStatus>", plaintext, re.S)
    assert "<StatuChangeEvent>2</StatuChangeEvent>" in plaintext
    assert f"<AgentID>{SIM.agent_id}</AgentID>" in plaintext

    # The signature covers the ciphertext: a tampered body no longer verifies.
    tampered = received.body.decode().replace("<Encrypt><![CDATA[", "<Encrypt><![CDATA[A", 1)
    with pytest.raises(InvalidSignatureException):
        crypto.decrypt_message(tampered, query["msg_signature"], query["timestamp"], query["nonce"])
