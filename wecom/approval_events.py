"""WeCom's ``sys_approval_change`` event, parsed from the decrypted XML.

wechatpy 1.8.18 knows no such event (it answers UnknownMessage), so the ``ApprovalInfo`` block is
read here into frozen dataclasses. Repeated elements (``SpRecord``, ``Details``, ``Notifyer``,
``Comments``) are tuples even when WeCom sends one, so callers never meet a lone item where they
expect a list. The event is a notice, not a verdict: whoever acts on it confirms with
oa/getapprovaldetail first (see ``wecom.approvals``).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET  # type only; parsing is wecom.xml_safety's
from dataclasses import dataclass
from typing import Any

from sanic import Sanic

from wecom.events import MalformedEvent, approval_handler_of, handler

EVENT = "sys_approval_change"

# ApprovalInfo/SpStatus (and SpRecord/Details SpStatus) as WeCom documents them.
SP_APPLYING = 1
SP_APPROVED = 2
SP_REJECTED = 3
SP_WITHDRAWN = 6

# StatuChangeEvent (WeCom's spelling): what happened that caused this notice.
CHANGE_SUBMITTED = 1
CHANGE_APPROVED = 2
CHANGE_REJECTED = 3
CHANGE_WITHDRAWN = 6
CHANGE_COMMENTED = 10


@dataclass(frozen=True, slots=True)
class ApproverDetail:
    """One approver's part in a node (``SpRecord/Details``)."""

    userid: str
    speech: str
    sp_status: int
    sp_time: int


@dataclass(frozen=True, slots=True)
class SpRecord:
    """One approval node: its status, 1 会签 / 2 或签, and each approver's decision."""

    sp_status: int
    approver_attr: int
    details: tuple[ApproverDetail, ...]


@dataclass(frozen=True, slots=True)
class Comment:
    userid: str
    time: int
    content: str
    comment_id: str


@dataclass(frozen=True, slots=True)
class ApprovalChange:
    """``ApprovalInfo`` of a ``sys_approval_change`` event, plus the envelope fields that matter."""

    sp_no: str
    sp_name: str
    sp_status: int
    template_id: str
    apply_time: int
    applyer_userid: str
    applyer_party: str
    sp_records: tuple[SpRecord, ...]
    notifyers: tuple[str, ...]
    comments: tuple[Comment, ...]
    statu_change_event: int | None
    agent_id: str
    create_time: int | None

    def speeches(self) -> list[str]:
        """Every non-empty approver comment, in node order (a rejection's reason is among them)."""
        return [d.speech for r in self.sp_records for d in r.details if d.speech]


def _text(parent: ET.Element, path: str, *, required: bool = False) -> str:
    value = parent.findtext(path)
    if value is None:
        if required:
            raise MalformedEvent(f"missing {path}")
        return ""
    return value.strip()


def _int(parent: ET.Element, path: str, *, required: bool = True) -> int | None:
    value = _text(parent, path, required=required)
    if not value:
        if required:
            raise MalformedEvent(f"missing {path}")
        return None
    # ASCII digits only: int() would also take "٣" or "1_0", which WeCom never sends.
    if not (value.isascii() and value.lstrip("-").isdigit()):
        raise MalformedEvent(f"{path} is not a number")
    return int(value)


def _required_int(parent: ET.Element, path: str) -> int:
    value = _int(parent, path, required=True)
    if value is None:  # _int raises first; this narrows the type
        raise MalformedEvent(f"missing {path}")
    return value


def _detail(element: ET.Element) -> ApproverDetail:
    return ApproverDetail(
        userid=_text(element, "Approver/UserId"),
        speech=_text(element, "Speech"),
        sp_status=_required_int(element, "SpStatus"),
        sp_time=_int(element, "SpTime", required=False) or 0,
    )


def _record(element: ET.Element) -> SpRecord:
    return SpRecord(
        sp_status=_required_int(element, "SpStatus"),
        approver_attr=_int(element, "ApproverAttr", required=False) or 0,
        details=tuple(_detail(d) for d in element.findall("Details")),
    )


def _comment(element: ET.Element) -> Comment:
    return Comment(
        userid=_text(element, "CommentUserInfo/UserId"),
        time=_int(element, "CommentTime", required=False) or 0,
        content=_text(element, "CommentContent"),
        comment_id=_text(element, "CommentId"),
    )


def parse_approval_change(message: ET.Element) -> ApprovalChange:
    """Read a decrypted ``sys_approval_change`` message. Raises MalformedEvent when a field the
    workflow needs (SpNo, SpStatus, a node's or approver's SpStatus) is missing or not a number."""
    info = message.find("ApprovalInfo")
    if info is None:
        raise MalformedEvent("missing ApprovalInfo")
    sp_no = _text(info, "SpNo", required=True)
    if not sp_no or len(sp_no) > 64:
        raise MalformedEvent("bad SpNo")
    return ApprovalChange(
        sp_no=sp_no,
        sp_name=_text(info, "SpName"),
        sp_status=_required_int(info, "SpStatus"),
        template_id=_text(info, "TemplateId"),
        apply_time=_int(info, "ApplyTime", required=False) or 0,
        applyer_userid=_text(info, "Applyer/UserId"),
        applyer_party=_text(info, "Applyer/Party"),
        sp_records=tuple(_record(r) for r in info.findall("SpRecord")),
        notifyers=tuple(userid for n in info.findall("Notifyer") if (userid := _text(n, "UserId"))),
        comments=tuple(_comment(c) for c in info.findall("Comments")),
        statu_change_event=_int(info, "StatuChangeEvent", required=False),
        agent_id=_text(message, "AgentID"),
        create_time=_int(message, "CreateTime", required=False),
    )


@handler(EVENT)
async def on_approval_change(app: Sanic[Any, Any], message: ET.Element) -> None:
    change = parse_approval_change(message)
    await approval_handler_of(app)(app, change)
