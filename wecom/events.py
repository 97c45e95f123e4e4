"""WeCom callback events, dispatched by (MsgType, Event) through a small registry.

A handler gets the app and the decrypted, parsed message and returns nothing; the endpoint then
answers ``success``. Messages nobody registered for are acknowledged too (WeCom retries anything
else) and logged with their type only: their fields may name people.

The approval hook: ``sys_approval_change`` is parsed here (``wecom.approval_events``) and handed to
whatever ``app.ctx.wecom_approval_handler`` holds, so the workflow that confirms the approval with
oa/getapprovaldetail and moves the submission can live elsewhere and be swapped in tests.
"""

from __future__ import annotations

import logging
import xml.etree.ElementTree as ET  # type only; parsing is wecom.xml_safety's
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from sanic import Sanic

if TYPE_CHECKING:
    from wecom.approval_events import ApprovalChange

log = logging.getLogger("suban.wecom.events")

EventKey = tuple[str, str | None]
EventHandler = Callable[[Sanic[Any, Any], ET.Element], Awaitable[None]]
ApprovalChangeHandler = Callable[[Sanic[Any, Any], "ApprovalChange"], Awaitable[None]]

# Where the app keeps its approval hook (see set_approval_handler).
APPROVAL_HANDLER_ATTR = "wecom_approval_handler"

_registry: dict[EventKey, EventHandler] = {}


class MalformedEvent(ValueError):
    """A known event whose content is not what WeCom documents (missing or non-numeric fields)."""


def handler(
    event: str | None, *, msg_type: str = "event"
) -> Callable[[EventHandler], EventHandler]:
    """Register ``fn`` for messages of ``msg_type`` (and ``event``, for ``MsgType=event``).

    ``@handler("sys_approval_change")`` for an event, ``@handler(None, msg_type="text")`` for a
    plain message. Registering one key twice is a programming error, not a silent override.
    """

    def register(fn: EventHandler) -> EventHandler:
        key = (msg_type, event)
        if key in _registry and _registry[key] is not fn:
            raise RuntimeError(f"a WeCom handler for {key} is already registered")
        _registry[key] = fn
        return fn

    return register


def key_of(message: ET.Element) -> EventKey:
    msg_type = (message.findtext("MsgType") or "").strip()
    event = (message.findtext("Event") or "").strip() if msg_type == "event" else None
    return msg_type, event


def registered(key: EventKey) -> EventHandler | None:
    return _registry.get(key)


async def dispatch(app: Sanic[Any, Any], message: ET.Element) -> bool:
    """Run the handler registered for the message's type. False when there is none (the message
    is then only acknowledged)."""
    key = key_of(message)
    found = _registry.get(key)
    if found is None:
        # The type alone: the fields of member changes and messages carry personal data. Both are
        # cut short so a hostile value cannot flood the log line.
        log.info("wecom callback: no handler for MsgType=%.32s Event=%.64s", key[0], key[1] or "-")
        return False
    await found(app, message)
    return True


# --------------------------------------------------------------------------- the approval hook


async def ignore_approval_change(app: Sanic[Any, Any], change: ApprovalChange) -> None:
    """The default hook until the approval workflow installs its own: log and do nothing."""
    log.info(
        "wecom approval change sp_no=%s status=%s event=%s ignored: no handler installed",
        change.sp_no,
        change.sp_status,
        change.statu_change_event,
    )


def set_approval_handler(app: Sanic[Any, Any], hook: ApprovalChangeHandler) -> None:
    setattr(app.ctx, APPROVAL_HANDLER_ATTR, hook)


def approval_handler_of(app: Sanic[Any, Any]) -> ApprovalChangeHandler:
    hook: ApprovalChangeHandler | None = getattr(app.ctx, APPROVAL_HANDLER_ATTR, None)
    return hook if hook is not None else ignore_approval_change
