"""The WeCom bridge attached to the app: the callback endpoint, member login and binding, and
what an approval change does (forms' lifecycle through wecom/approvals.py, then the same
follow-ups as any status change)."""

from __future__ import annotations

from typing import Any

from sanic import Sanic

from forms import progress
from miniapp_api.filing import service_notice
from miniapp_api.jobs import enqueue
from miniapp_api.routes import wecom_jsapi, wecom_members
from miniapp_api.settings import Settings
from wecom import approvals, events
from wecom import callback as wecom_callback
from wecom.approval_events import ApprovalChange


def setup_wecom(app: Sanic[Any, Any], settings: Settings) -> None:
    app.blueprint(wecom_callback.bp)
    # Member OAuth login (/wecom/oauth/...) and binding (/api/v1/wecom/bind ...).
    app.blueprint(wecom_members.bp)
    # JS-SDK signatures for our pages opened inside WeCom (/api/v1/wecom/jsapi-config).
    app.blueprint(wecom_jsapi.bp)

    async def on_approval_change(app: Sanic[Any, Any], change: ApprovalChange) -> None:
        notice = service_notice(settings)
        changed = await approvals.apply_change(change.sp_no, app.ctx.wechat.wecom, notice)
        if changed is not None:
            await progress.refresh(app.ctx.redis, changed)
            await enqueue(app, "deliver_outbox")

    events.set_approval_handler(app, on_approval_change)
