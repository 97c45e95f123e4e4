"""Everything the simulator remembers. In memory on purpose: it is a dev and test tool, and one
process serves one test session or one dev app."""

from __future__ import annotations

import secrets
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from wechat.simulator.approvals import Approval
from wechat.simulator.faults import Fault

# Counter names, one per simulated endpoint; the control API accepts exactly these.
MINIPROGRAM_ENDPOINTS = (
    "stable_token",
    "jscode2session",
    "getuserphonenumber",
    "face_getinfo",
    "subscribe_send",
    "getwxacodeunlimit",
)
WECOM_ENDPOINTS = (
    "gettoken",
    "getuserinfo",
    "message_send",
    "applyevent",
    "getapprovaldetail",
    "get_jsapi_ticket",
    "ticket_get",
)
ENDPOINTS = MINIPROGRAM_ENDPOINTS + WECOM_ENDPOINTS


@dataclass
class IssuedToken:
    kind: str
    owner: str
    expires_at: float


@dataclass(frozen=True)
class CallbackTarget:
    url: str
    token: str = field(repr=False)
    aes_key: str = field(repr=False)


@dataclass(frozen=True)
class TokenCheck:
    """Outcome of checking an access token: ``errcode`` 0 means accepted."""

    errcode: int
    errmsg: str = "ok"


class SimulatorState:
    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self.callback: CallbackTarget | None = None
        self.reset()

    def reset(self) -> None:
        """Forget tokens, counters, latency, faults, approvals and messages (not the callback
        target, which is configuration)."""
        self.counters: dict[str, int] = dict.fromkeys(ENDPOINTS, 0)
        self.latency_ms: dict[str, int] = {}
        self.faults: dict[str, deque[Fault]] = {}
        self.tokens: dict[str, IssuedToken] = {}
        self.approvals: dict[str, Approval] = {}
        self.messages: list[dict[str, Any]] = []
        self._sp_seq = 0
        # WeCom's SpNo is unique corp-wide; several simulators (restarts, test processes) write
        # into one database, so each numbers its approvals under a random run prefix.
        self._sp_run = f"{secrets.randbelow(10**6):06d}"

    # -- tokens ------------------------------------------------------------------------------

    def issue_token(self, kind: str, owner: str, ttl: int) -> tuple[str, int]:
        """Like Tencent's stable_token and WeCom gettoken: the same token while it is valid,
        a new one once it has expired. Returns (token, seconds left)."""
        now = self.clock()
        for token, issued in self.tokens.items():
            if issued.kind == kind and issued.owner == owner and issued.expires_at > now:
                return token, max(1, int(issued.expires_at - now))
        token = f"sim-{kind}-{secrets.token_urlsafe(24)}"
        self.tokens[token] = IssuedToken(kind, owner, now + ttl)
        return token, ttl

    def check_token(self, kind: str, token: str | None) -> TokenCheck:
        if not token:
            return TokenCheck(41001, "access_token missing")
        issued = self.tokens.get(token)
        if issued is None or issued.kind != kind:
            if kind == "wecom":
                return TokenCheck(40014, "invalid access_token")
            return TokenCheck(40001, "invalid credential, access_token is invalid or not latest")
        if issued.expires_at <= self.clock():
            return TokenCheck(42001, "access_token expired")
        return TokenCheck(0)

    def expire_tokens(self) -> int:
        now = self.clock()
        live = [issued for issued in self.tokens.values() if issued.expires_at > now]
        for issued in live:
            issued.expires_at = now
        return len(live)

    # -- faults and latency ------------------------------------------------------------------

    def add_faults(self, endpoint: str, fault: Fault, count: int) -> None:
        self.faults.setdefault(endpoint, deque()).extend([fault] * count)

    def take_fault(self, endpoint: str) -> Fault | None:
        queue = self.faults.get(endpoint)
        return queue.popleft() if queue else None

    # -- approvals ---------------------------------------------------------------------------

    def next_sp_no(self) -> str:
        self._sp_seq += 1
        day = time.strftime("%Y%m%d", time.localtime(self.clock()))
        return f"{day}{self._sp_run}{self._sp_seq:06d}"
