"""Test and dev controls: latency, injected faults, token expiry, counters, approvals, callbacks.

Routes (under the blueprint's ``/control``), JSON in and out, 400 ``{"error"}`` on bad input:

* ``GET  /counters`` → ``{"counters": {endpoint: calls}}``
* ``POST /reset`` → forget tokens, counters, latency, faults, approvals, messages
* ``POST /latency`` ``{"endpoint", "ms"}`` → every later call of that endpoint waits ``ms``
  (0 removes it)
* ``POST /faults`` ``{"endpoint", "kind", "count"=1, ...}`` → the next ``count`` calls fail:
  ``kind`` ``errcode`` (``errcode``, ``errmsg``?), ``http`` (``status``=500), ``drop`` (connection
  closed unanswered) or ``hang`` (``ms`` without answer); ``DELETE /faults`` clears them
* ``POST /tokens/expire`` → every issued token now answers 42001 (JS-SDK tickets end too)
* ``GET  /approvals``, ``GET /approvals/<sp_no>`` → recorded approvals (``getapprovaldetail`` info)
* ``POST /approvals/<sp_no>/approve`` · ``/reject`` ``{"approver"?, "speech"?}`` → decides it and,
  with a callback target set, pushes ``sys_approval_change``; answers ``{"info", "callback"}``
* ``GET  /messages?channel=subscribe|wecom`` → messages sent through the simulated APIs
* ``PUT  /callback`` ``{"url", "token", "aes_key"}`` · ``DELETE /callback`` → where callbacks go
"""

from __future__ import annotations

from typing import Any

from sanic import Blueprint, Request
from sanic.response import HTTPResponse, json

from wechat.simulator.approvals import AlreadyDecided
from wechat.simulator.callbacks import deliver
from wechat.simulator.config import SimulatorConfig
from wechat.simulator.endpoint import json_body
from wechat.simulator.faults import Fault
from wechat.simulator.state import ENDPOINTS, CallbackTarget, SimulatorState


def _bad(message: str, status: int = 400) -> HTTPResponse:
    return json({"error": message}, status=status)


def control_blueprint(state: SimulatorState, config: SimulatorConfig) -> Blueprint:
    bp = Blueprint("wechat_simulator_control", url_prefix="/control")

    def endpoint_of(body: dict[str, Any]) -> str | None:
        endpoint = body.get("endpoint")
        return endpoint if endpoint in ENDPOINTS else None

    @bp.get("/counters", name="counters")
    async def counters(request: Request) -> HTTPResponse:
        return json({"counters": state.counters})

    @bp.post("/reset", name="reset")
    async def reset(request: Request) -> HTTPResponse:
        state.reset()
        return json({"ok": True})

    @bp.post("/latency", name="latency")
    async def latency(request: Request) -> HTTPResponse:
        body = json_body(request) or {}
        endpoint = endpoint_of(body)
        if endpoint is None:
            return _bad(f"endpoint must be one of {', '.join(ENDPOINTS)}")
        try:
            ms = int(body.get("ms", 0))
        except (TypeError, ValueError):
            return _bad("ms must be an integer")
        if ms > 0:
            state.latency_ms[endpoint] = ms
        else:
            state.latency_ms.pop(endpoint, None)
        return json({"endpoint": endpoint, "ms": max(ms, 0)})

    @bp.post("/faults", name="add_faults")
    async def add_faults(request: Request) -> HTTPResponse:
        body = json_body(request) or {}
        endpoint = endpoint_of(body)
        if endpoint is None:
            return _bad(f"endpoint must be one of {', '.join(ENDPOINTS)}")
        try:
            fault = Fault.from_json(body)
            count = int(body.get("count", 1))
        except (TypeError, ValueError) as exc:
            return _bad(f"bad fault: {exc}")
        state.add_faults(endpoint, fault, count)
        return json({"endpoint": endpoint, "pending": len(state.faults[endpoint])})

    @bp.delete("/faults", name="clear_faults")
    async def clear_faults(request: Request) -> HTTPResponse:
        state.faults.clear()
        return json({"ok": True})

    @bp.post("/tokens/expire", name="expire_tokens")
    async def expire_tokens(request: Request) -> HTTPResponse:
        return json({"expired": state.expire_tokens()})

    @bp.get("/approvals", name="approvals")
    async def approvals(request: Request) -> HTTPResponse:
        return json({"approvals": [a.info() for a in state.approvals.values()]})

    @bp.get("/approvals/<sp_no:str>", name="approval")
    async def approval(request: Request, sp_no: str) -> HTTPResponse:
        found = state.approvals.get(sp_no)
        if found is None:
            return _bad("no such approval", 404)
        return json({"info": found.info()})

    @bp.post("/approvals/<sp_no:str>/<decision:approve|reject>", name="decide")
    async def decide(request: Request, sp_no: str, decision: str) -> HTTPResponse:
        found = state.approvals.get(sp_no)
        if found is None:
            return _bad("no such approval", 404)
        body = json_body(request) or {}
        now = int(state.clock())
        try:
            found.decide(
                approve=decision == "approve",
                approver=str(body["approver"]) if body.get("approver") else None,
                speech=str(body.get("speech") or ""),
                now=now,
            )
        except AlreadyDecided:
            return _bad("approval already decided", 409)
        callback: dict[str, Any] = {"sent": False}
        if state.callback is not None:
            plaintext = found.change_event_xml(
                corp_id=config.corp_id, agent_id=config.agent_id, now=now
            )
            delivery = await deliver(
                state.callback,
                corp_id=config.corp_id,
                agent_id=config.agent_id,
                plaintext=plaintext,
            )
            callback = {
                "sent": True,
                "status": delivery.status,
                "body": delivery.body,
                "error": delivery.error,
            }
        return json({"info": found.info(), "callback": callback})

    @bp.get("/messages", name="messages")
    async def messages(request: Request) -> HTTPResponse:
        channel = request.args.get("channel")
        sent = [m for m in state.messages if channel is None or m["channel"] == channel]
        return json({"messages": sent})

    @bp.put("/callback", name="set_callback")
    async def set_callback(request: Request) -> HTTPResponse:
        body = json_body(request) or {}
        url, token, aes_key = body.get("url"), body.get("token"), body.get("aes_key")
        if not (isinstance(url, str) and isinstance(token, str) and isinstance(aes_key, str)):
            return _bad("url, token and aes_key are required strings")
        if len(aes_key) != 43:
            return _bad("aes_key must be the 43-character EncodingAESKey")
        state.callback = CallbackTarget(url=url, token=token, aes_key=aes_key)
        return json({"configured": True})

    @bp.delete("/callback", name="clear_callback")
    async def clear_callback(request: Request) -> HTTPResponse:
        state.callback = None
        return json({"configured": False})

    return bp
