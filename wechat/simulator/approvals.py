"""WeCom OA approvals as the simulator records them: the ``getapprovaldetail`` shape and the
``sys_approval_change`` event XML that WeCom pushes to the app's callback."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# sp_status of an approval and of each node / approver in it.
PENDING = 1
APPROVED = 2
REJECTED = 3

# StatuChangeEvent values of the callback (WeCom's spelling).
CHANGE_APPROVED = 2
CHANGE_REJECTED = 3

_FALLBACK_APPROVER = "sim-approver"


class AlreadyDecided(Exception):
    pass


@dataclass
class ApproverDecision:
    userid: str
    sp_status: int = PENDING
    speech: str = ""
    sptime: int = 0


@dataclass
class ApprovalNode:
    attr: int  # 1 会签 (all must approve), 2 或签 (any one)
    details: list[ApproverDecision]

    @property
    def sp_status(self) -> int:
        statuses = {detail.sp_status for detail in self.details}
        if REJECTED in statuses:
            return REJECTED
        return APPROVED if statuses == {APPROVED} else PENDING


@dataclass
class Approval:
    sp_no: str
    template_id: str
    creator_userid: str
    apply_time: int
    nodes: list[ApprovalNode]
    notifyer: list[str] = field(default_factory=list)
    apply_data: dict[str, Any] = field(default_factory=dict)
    summary_list: list[Any] = field(default_factory=list)
    sp_name: str = "模拟审批"
    sp_status: int = PENDING

    @classmethod
    def from_applyevent(cls, sp_no: str, payload: dict[str, Any], now: int) -> Approval:
        """Raises ValueError naming the missing field (the simulator answers 40058)."""
        creator = payload.get("creator_userid")
        template_id = payload.get("template_id")
        apply_data = payload.get("apply_data")
        if not isinstance(creator, str) or not creator:
            raise ValueError("creator_userid")
        if not isinstance(template_id, str) or not template_id:
            raise ValueError("template_id")
        if not isinstance(apply_data, dict) or not isinstance(apply_data.get("contents"), list):
            raise ValueError("apply_data.contents")
        nodes = [
            ApprovalNode(
                attr=int(node.get("attr", 1)),
                details=[ApproverDecision(str(userid)) for userid in node.get("userid", [])],
            )
            for node in payload.get("approver") or []
            if isinstance(node, dict)
        ]
        if not nodes and not payload.get("use_template_approver"):
            raise ValueError("approver")
        return cls(
            sp_no=sp_no,
            template_id=template_id,
            creator_userid=creator,
            apply_time=now,
            nodes=nodes,
            notifyer=[str(userid) for userid in payload.get("notifyer") or []],
            apply_data=apply_data,
            summary_list=list(payload.get("summary_list") or []),
        )

    def decide(self, *, approve: bool, approver: str | None, speech: str, now: int) -> None:
        """Approve the whole flow, or reject it at its first node. ``approver`` defaults to the
        first approver of the first node."""
        if self.sp_status != PENDING:
            raise AlreadyDecided(self.sp_no)
        if not self.nodes:
            # use_template_approver: the template's approvers are unknown here.
            self.nodes.append(ApprovalNode(1, [ApproverDecision(approver or _FALLBACK_APPROVER)]))
        actor = approver or self.nodes[0].details[0].userid
        if approve:
            for node in self.nodes:
                for detail in node.details:
                    detail.sp_status, detail.sptime = APPROVED, now
                    if detail.userid == actor:
                        detail.speech = speech
            self.sp_status = APPROVED
            return
        first = self.nodes[0]
        acting = next((d for d in first.details if d.userid == actor), None)
        if acting is None:
            acting = ApproverDecision(actor)
            first.details.append(acting)
        acting.sp_status, acting.speech, acting.sptime = REJECTED, speech, now
        self.sp_status = REJECTED

    def info(self) -> dict[str, Any]:
        """``info`` of /cgi-bin/oa/getapprovaldetail."""
        return {
            "sp_no": self.sp_no,
            "sp_name": self.sp_name,
            "sp_status": self.sp_status,
            "template_id": self.template_id,
            "apply_time": self.apply_time,
            "applyer": {"userid": self.creator_userid, "partyid": "1"},
            "sp_record": [
                {
                    "sp_status": node.sp_status,
                    "approverattr": node.attr,
                    "details": [
                        {
                            "approver": {"userid": detail.userid},
                            "speech": detail.speech,
                            "sp_status": detail.sp_status,
                            "sptime": detail.sptime,
                            "media_id": [],
                        }
                        for detail in node.details
                    ],
                }
                for node in self.nodes
            ],
            "notifyer": [{"userid": userid} for userid in self.notifyer],
            "apply_data": self.apply_data,
            "comments": [],
        }

    def change_event_xml(self, *, corp_id: str, agent_id: int, now: int) -> str:
        """Plaintext of the ``sys_approval_change`` callback for the approval's current state."""
        change = CHANGE_APPROVED if self.sp_status == APPROVED else CHANGE_REJECTED
        records = "".join(
            "<SpRecord>"
            f"<SpStatus>{node.sp_status}</SpStatus>"
            f"<ApproverAttr>{node.attr}</ApproverAttr>"
            + "".join(
                "<Details>"
                f"<Approver><UserId>{_cdata(d.userid)}</UserId></Approver>"
                f"<Speech>{_cdata(d.speech)}</Speech>"
                f"<SpStatus>{d.sp_status}</SpStatus>"
                f"<SpTime>{d.sptime}</SpTime>"
                "</Details>"
                for d in node.details
            )
            + "</SpRecord>"
            for node in self.nodes
        )
        notifyers = "".join(
            f"<Notifyer><UserId>{_cdata(userid)}</UserId></Notifyer>" for userid in self.notifyer
        )
        return (
            "<xml>"
            f"<ToUserName>{_cdata(corp_id)}</ToUserName>"
            f"<FromUserName>{_cdata('sys')}</FromUserName>"
            f"<CreateTime>{now}</CreateTime>"
            f"<MsgType>{_cdata('event')}</MsgType>"
            f"<Event>{_cdata('sys_approval_change')}</Event>"
            f"<AgentID>{agent_id}</AgentID>"
            "<ApprovalInfo>"
            f"<SpNo>{self.sp_no}</SpNo>"
            f"<SpName>{_cdata(self.sp_name)}</SpName>"
            f"<SpStatus>{self.sp_status}</SpStatus>"
            f"<TemplateId>{_cdata(self.template_id)}</TemplateId>"
            f"<ApplyTime>{self.apply_time}</ApplyTime>"
            f"<Applyer><UserId>{_cdata(self.creator_userid)}</UserId>"
            f"<Party>{_cdata('1')}</Party></Applyer>"
            f"{records}{notifyers}"
            f"<StatuChangeEvent>{change}</StatuChangeEvent>"
            "</ApprovalInfo>"
            "</xml>"
        )


def _cdata(value: str) -> str:
    # A literal "]]>" would end the section early; split it across two sections.
    return "<![CDATA[" + value.replace("]]>", "]]]]><![CDATA[>") + "]]>"
