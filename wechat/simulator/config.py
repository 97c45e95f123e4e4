"""Credentials and callback target the simulator accepts, matching the app's dev settings."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class SimulatorConfig:
    appid: str = "wx-sim-appid"
    secret: str = field(default="wx-sim-secret", repr=False)
    corp_id: str = "ww-sim-corp"
    corp_secret: str = field(default="ww-sim-secret", repr=False)
    agent_id: int = 1000002
    # Where approval callbacks go (the app's /wecom/callback), with that app's Token and
    # EncodingAESKey; without all three, approvals change state but nothing is sent.
    callback_url: str | None = None
    callback_token: str | None = field(default=None, repr=False)
    callback_aes_key: str | None = field(default=None, repr=False)
    # Lifetime of issued access tokens; Tencent's is 7200 s.
    token_ttl: int = 7200
    # Lifetime of issued JS-SDK tickets (get_jsapi_ticket, ticket/get); WeCom's is 7200 s.
    ticket_ttl: int = 7200
