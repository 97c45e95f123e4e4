"""The WeCom server APIs, answering with the real APIs' shapes and error codes.

OAuth codes: ``sim:<userid>`` → that corp member; ``sim-guest:<openid>`` → a non-member (answered
with ``openid`` instead of ``userid``, as WeCom does); anything else → 40029. Unknown access tokens
get WeCom's 40014 (the mini-program API says 40001), expired ones 42001.

JS-SDK tickets (``get_jsapi_ticket``, ``ticket/get?type=agent_config``): the same ticket while it
is valid, as WeCom answers, for ``ticket_ttl`` seconds; ``/control/tokens/expire`` ends them too.

``/connect/oauth2/authorize`` stands in for WeCom's OAuth page (open.weixin.qq.com): a form asking
for a userid, then a redirect to ``redirect_uri`` with ``code=sim:<userid>`` and the ``state``.
"""

from __future__ import annotations

import secrets

from sanic import Blueprint, Request
from sanic.response import HTTPResponse

from wechat.simulator.approvals import Approval
from wechat.simulator.config import SimulatorConfig
from wechat.simulator.endpoint import posted, simulated, wechat_error, wechat_ok
from wechat.simulator.oauth_page import authorize_page
from wechat.simulator.state import SimulatorState


def wecom_blueprint(state: SimulatorState, config: SimulatorConfig) -> Blueprint:
    bp = Blueprint("wechat_simulator_wecom", url_prefix="/wecom")

    @bp.get("/cgi-bin/gettoken", name="gettoken")
    @simulated(state, "gettoken")
    async def gettoken(request: Request) -> HTTPResponse:
        corpid = request.args.get("corpid")
        secret = request.args.get("corpsecret")
        if not corpid:
            return wechat_error(41002, "corpid missing")
        if not secret:
            return wechat_error(41004, "corpsecret missing")
        if corpid != config.corp_id:
            return wechat_error(40013, "invalid corpid")
        if secret != config.corp_secret:
            # WeCom's code for a wrong secret on this endpoint.
            return wechat_error(40001, "invalid credential")
        owner = f"{config.corp_id}:{config.agent_id}"
        token, expires_in = state.issue_token("wecom", owner, config.token_ttl)
        return wechat_ok(access_token=token, expires_in=expires_in)

    @bp.get("/cgi-bin/auth/getuserinfo", name="getuserinfo")
    @simulated(state, "getuserinfo", kind="wecom")
    async def getuserinfo(request: Request) -> HTTPResponse:
        code = request.args.get("code") or ""
        if not code:
            return wechat_error(41008, "missing code")
        if code.startswith("sim:") and len(code) > 4:
            return wechat_ok(userid=code[4:], user_ticket=secrets.token_urlsafe(24))
        if code.startswith("sim-guest:") and len(code) > 10:
            return wechat_ok(openid=code[10:], external_userid="")
        return wechat_error(40029, "invalid code")

    @bp.post("/cgi-bin/message/send", name="message_send")
    @simulated(state, "message_send", kind="wecom", posts_json=True)
    async def message_send(request: Request) -> HTTPResponse:
        body = posted(request)
        if str(body.get("agentid")) != str(config.agent_id):
            return wechat_error(40056, "invalid agentid")
        msgtype = body.get("msgtype")
        if not isinstance(msgtype, str) or not isinstance(body.get(msgtype), dict):
            return wechat_error(40008, "invalid message type")
        if not (body.get("touser") or body.get("toparty") or body.get("totag")):
            return wechat_error(40003, "invalid userid")
        state.messages.append({"channel": "wecom", "body": body})
        return wechat_ok(
            invaliduser="",
            invalidparty="",
            invalidtag="",
            unlicenseduser="",
            msgid=f"sim-msg-{len(state.messages)}",
            response_code="",
        )

    @bp.post("/cgi-bin/oa/applyevent", name="applyevent")
    @simulated(state, "applyevent", kind="wecom", posts_json=True)
    async def applyevent(request: Request) -> HTTPResponse:
        body = posted(request)
        sp_no = state.next_sp_no()
        try:
            approval = Approval.from_applyevent(sp_no, body, int(state.clock()))
        except ValueError as exc:
            return wechat_error(40058, f"invalid parameter: {exc}")
        state.approvals[sp_no] = approval
        return wechat_ok(sp_no=sp_no)

    @bp.post("/cgi-bin/oa/getapprovaldetail", name="getapprovaldetail")
    @simulated(state, "getapprovaldetail", kind="wecom", posts_json=True)
    async def getapprovaldetail(request: Request) -> HTTPResponse:
        body = posted(request)
        approval = state.approvals.get(str(body.get("sp_no") or ""))
        if approval is None:
            return wechat_error(301055, "no such sp_no")
        return wechat_ok(info=approval.info())

    @bp.get("/cgi-bin/get_jsapi_ticket", name="get_jsapi_ticket")
    @simulated(state, "get_jsapi_ticket", kind="wecom")
    async def get_jsapi_ticket(request: Request) -> HTTPResponse:
        ticket, expires_in = state.issue_token("wecom_jsapi", config.corp_id, config.ticket_ttl)
        return wechat_ok(ticket=ticket, expires_in=expires_in)

    @bp.get("/cgi-bin/ticket/get", name="ticket_get")
    @simulated(state, "ticket_get", kind="wecom")
    async def ticket_get(request: Request) -> HTTPResponse:
        if request.args.get("type") != "agent_config":
            return wechat_error(40058, "invalid parameter: type")
        owner = f"{config.corp_id}:{config.agent_id}"
        ticket, expires_in = state.issue_token("wecom_agent_jsapi", owner, config.ticket_ttl)
        return wechat_ok(ticket=ticket, expires_in=expires_in)

    @bp.get("/connect/oauth2/authorize", name="oauth_authorize")
    async def oauth_authorize(request: Request) -> HTTPResponse:
        return authorize_page(request, config)

    return bp
