"""``sys_approval_change``: parsed from the decrypted XML (wechatpy 1.8.18 does not know it), with
SpRecord, Details, Notifyer and Comments as tuples whether WeCom sends one or several, and handed
to the app's approval hook through the callback."""

from __future__ import annotations

from typing import Any

import pytest
import redis.asyncio as redis_asyncio

from miniapp_api.settings import Settings
from tests.wecom.test_callback import callback_server, post, signed
from wechat.simulator.approvals import Approval, ApprovalNode, ApproverDecision
from wecom import events, xml_safety
from wecom.approval_events import (
    CHANGE_APPROVED,
    CHANGE_REJECTED,
    SP_APPROVED,
    SP_REJECTED,
    ApprovalChange,
    ApproverDetail,
    parse_approval_change,
)
from wecom.events import MalformedEvent

# WeCom's documented shape, one node with one approver (no lists in the XML at all).
SINGLE_RECORD = """<xml>
<ToUserName><![CDATA[ww-sim-corp]]></ToUserName>
<FromUserName><![CDATA[sys]]></FromUserName>
<CreateTime>1767225600</CreateTime>
<MsgType><![CDATA[event]]></MsgType>
<Event><![CDATA[sys_approval_change]]></Event>
<AgentID>1000002</AgentID>
<ApprovalInfo>
 <SpNo>202601010001</SpNo>
 <SpName><![CDATA[代开发票内部审批]]></SpName>
 <SpStatus>2</SpStatus>
 <TemplateId><![CDATA[tpl-1]]></TemplateId>
 <ApplyTime>1767225000</ApplyTime>
 <Applyer><UserId><![CDATA[clerk]]></UserId><Party><![CDATA[1]]></Party></Applyer>
 <SpRecord>
  <SpStatus>2</SpStatus>
  <ApproverAttr>1</ApproverAttr>
  <Details>
   <Approver><UserId><![CDATA[finance-head]]></UserId></Approver>
   <Speech><![CDATA[同意]]></Speech>
   <SpStatus>2</SpStatus>
   <SpTime>1767225500</SpTime>
  </Details>
 </SpRecord>
 <Notifyer><UserId><![CDATA[legal-rep]]></UserId></Notifyer>
 <StatuChangeEvent>2</StatuChangeEvent>
</ApprovalInfo>
</xml>"""

# Two nodes, the first 或签 with two approvers, the second rejected; two comments.
SEVERAL_RECORDS = """<xml>
<ToUserName><![CDATA[ww-sim-corp]]></ToUserName><FromUserName><![CDATA[sys]]></FromUserName>
<CreateTime>1767225600</CreateTime><MsgType><![CDATA[event]]></MsgType>
<Event><![CDATA[sys_approval_change]]></Event><AgentID>1000002</AgentID>
<ApprovalInfo>
 <SpNo>202601010002</SpNo><SpName><![CDATA[审批]]></SpName><SpStatus>3</SpStatus>
 <TemplateId><![CDATA[tpl-1]]></TemplateId><ApplyTime>1767225000</ApplyTime>
 <Applyer><UserId><![CDATA[clerk]]></UserId><Party><![CDATA[2]]></Party></Applyer>
 <SpRecord><SpStatus>2</SpStatus><ApproverAttr>2</ApproverAttr>
  <Details><Approver><UserId><![CDATA[a1]]></UserId></Approver><Speech><![CDATA[]]></Speech>
   <SpStatus>2</SpStatus><SpTime>1767225100</SpTime></Details>
  <Details><Approver><UserId><![CDATA[a2]]></UserId></Approver><Speech></Speech>
   <SpStatus>1</SpStatus><SpTime>0</SpTime></Details>
 </SpRecord>
 <SpRecord><SpStatus>3</SpStatus><ApproverAttr>1</ApproverAttr>
  <Details><Approver><UserId><![CDATA[b1]]></UserId></Approver>
   <Speech><![CDATA[金额有误 <请核对> & 重填]]></Speech><SpStatus>3</SpStatus>
   <SpTime>1767225200</SpTime></Details>
 </SpRecord>
 <Notifyer><UserId><![CDATA[n1]]></UserId></Notifyer>
 <Notifyer><UserId><![CDATA[n2]]></UserId></Notifyer>
 <Comments><CommentUserInfo><UserId><![CDATA[a1]]></UserId></CommentUserInfo>
  <CommentTime>1767225150</CommentTime><CommentContent><![CDATA[请补充合同]]></CommentContent>
  <CommentId><![CDATA[6750538708562308289]]></CommentId></Comments>
 <Comments><CommentUserInfo><UserId><![CDATA[clerk]]></UserId></CommentUserInfo>
  <CommentTime>1767225160</CommentTime><CommentContent><![CDATA[已补充]]></CommentContent>
  <CommentId><![CDATA[6750538708562308290]]></CommentId></Comments>
 <StatuChangeEvent>3</StatuChangeEvent>
</ApprovalInfo></xml>"""


def parsed(text: str) -> ApprovalChange:
    return parse_approval_change(xml_safety.parse(text))


def test_one_record_and_one_approver_are_still_tuples() -> None:
    change = parsed(SINGLE_RECORD)
    assert change.sp_no == "202601010001"
    assert change.sp_name == "代开发票内部审批"
    assert (change.sp_status, change.statu_change_event) == (SP_APPROVED, CHANGE_APPROVED)
    assert (change.template_id, change.apply_time) == ("tpl-1", 1767225000)
    assert (change.applyer_userid, change.applyer_party) == ("clerk", "1")
    assert isinstance(change.sp_records, tuple)
    assert len(change.sp_records) == 1
    record = change.sp_records[0]
    assert (record.sp_status, record.approver_attr) == (2, 1)
    assert record.details == (ApproverDetail("finance-head", "同意", 2, 1767225500),)
    assert change.notifyers == ("legal-rep",)
    assert change.comments == ()
    assert (change.agent_id, change.create_time) == ("1000002", 1767225600)


def test_several_records_details_notifyers_and_comments() -> None:
    change = parsed(SEVERAL_RECORDS)
    assert (change.sp_status, change.statu_change_event) == (SP_REJECTED, CHANGE_REJECTED)
    assert [r.approver_attr for r in change.sp_records] == [2, 1]
    assert [[d.userid for d in r.details] for r in change.sp_records] == [["a1", "a2"], ["b1"]]
    assert change.sp_records[0].details[1] == ApproverDetail("a2", "", 1, 0)
    assert change.speeches() == ["金额有误 <请核对> & 重填"]
    assert change.notifyers == ("n1", "n2")
    assert [(c.userid, c.content, c.comment_id) for c in change.comments] == [
        ("a1", "请补充合同", "6750538708562308289"),
        ("clerk", "已补充", "6750538708562308290"),
    ]
    assert change.applyer_party == "2"


def test_the_frozen_dataclasses_cannot_change() -> None:
    change = parsed(SINGLE_RECORD)
    with pytest.raises(AttributeError):
        change.sp_no = "other"  # type: ignore[misc]


@pytest.mark.parametrize("approve", [True, False])
def test_what_the_simulator_sends_parses(approve: bool) -> None:
    approval = Approval(
        sp_no="202601010003",
        template_id="sim-approval-template",
        creator_userid="clerk",
        apply_time=1767225000,
        nodes=[
            ApprovalNode(2, [ApproverDecision("rep"), ApproverDecision("head")]),
            ApprovalNode(1, [ApproverDecision("boss")]),
        ],
        notifyer=["watcher"],
    )
    approval.decide(approve=approve, approver="head", speech="理由]]>见附件", now=1767225300)
    xml = approval.change_event_xml(corp_id="ww-sim-corp", agent_id=1000002, now=1767225400)
    change = parsed(xml)
    assert change.sp_no == "202601010003"
    assert change.sp_status == (SP_APPROVED if approve else SP_REJECTED)
    assert change.statu_change_event == (CHANGE_APPROVED if approve else CHANGE_REJECTED)
    assert change.applyer_userid == "clerk"
    assert change.notifyers == ("watcher",)
    assert len(change.sp_records) == 2
    assert [d.userid for d in change.sp_records[0].details] == ["rep", "head"]
    # The CDATA split around "]]>" comes back whole.
    assert change.speeches() == ["理由]]>见附件"]
    head = change.sp_records[0].details[1]
    assert (head.sp_status, head.sp_time) == (
        SP_APPROVED if approve else SP_REJECTED,
        1767225300,
    )
    assert change.create_time == 1767225400


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("<SpNo>202601010001</SpNo>", ""),
        ("<SpNo>202601010001</SpNo>", "<SpNo> </SpNo>"),
        ("<SpStatus>2</SpStatus>\n <TemplateId>", "<SpStatus>two</SpStatus>\n <TemplateId>"),
        ("<SpStatus>2</SpStatus>\n   <SpTime>", "<SpTime>"),
        ("<StatuChangeEvent>2</StatuChangeEvent>", "<StatuChangeEvent>²</StatuChangeEvent>"),
    ],
)
def test_missing_or_non_numeric_fields_are_malformed(old: str, new: str) -> None:
    assert old in SINGLE_RECORD
    with pytest.raises(MalformedEvent):
        parsed(SINGLE_RECORD.replace(old, new, 1))


def test_no_approval_info_is_malformed() -> None:
    with pytest.raises(MalformedEvent):
        parsed("<xml><MsgType>event</MsgType><Event>sys_approval_change</Event></xml>")


# ----------------------------------------------------------------------------- through the callback


async def test_the_callback_hands_the_change_to_the_apps_hook(
    settings: Settings, redis_client: redis_asyncio.Redis
) -> None:
    seen: list[tuple[Any, ApprovalChange]] = []

    async def hook(app: Any, change: ApprovalChange) -> None:
        seen.append((app, change))

    async with callback_server(
        settings, lambda app: events.set_approval_handler(app, hook)
    ) as server:
        response = await post(server, signed(settings, SEVERAL_RECORDS))
    assert (response.status_code, response.text) == (200, "success")
    assert len(seen) == 1
    app, change = seen[0]
    assert app is server.app
    assert change == parsed(SEVERAL_RECORDS)


async def test_without_a_hook_the_change_is_logged_and_acknowledged(
    settings: Settings, redis_client: redis_asyncio.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("INFO", logger="suban.wecom.events")

    def without_hook(app: Any) -> None:
        # The service installs its hook (miniapp_api/wecom_setup.py); take it away again.
        setattr(app.ctx, events.APPROVAL_HANDLER_ATTR, None)

    async with callback_server(settings, without_hook) as server:
        assert events.approval_handler_of(server.app) is events.ignore_approval_change
        response = await post(server, signed(settings, SINGLE_RECORD))
    assert (response.status_code, response.text) == (200, "success")
    assert any("sp_no=202601010001" in r.getMessage() for r in caplog.records)


async def test_a_malformed_approval_event_is_400(
    settings: Settings, redis_client: redis_asyncio.Redis
) -> None:
    broken = SINGLE_RECORD.replace("<SpNo>202601010001</SpNo>", "")
    async with callback_server(settings) as server:
        response = await post(server, signed(settings, broken))
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "BAD_REQUEST"


def test_the_event_is_registered_under_its_type() -> None:
    message = xml_safety.parse(SINGLE_RECORD)
    assert events.key_of(message) == ("event", "sys_approval_change")
    assert events.registered(("event", "sys_approval_change")) is not None
