"""Placeholder until wechat/ lands."""

from __future__ import annotations

from typing import Any

from sanic import Sanic

from miniapp_api.settings import Settings


class WeChatClients:
    pass


def setup_wechat(app: Sanic[Any, Any], settings: Settings) -> None:
    pass


def setup_simulator(app: Sanic[Any, Any], settings: Settings) -> None:
    pass
