"""The WeChat and WeCom clients (one transport, one Redis token store per worker) and, in dev
mode, the simulator mounted at ``/_sim`` with the clients pointed at it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sanic import Sanic
from sanic_ext import openapi

from miniapp_api.settings import SIMULATOR_PREFIX, Settings
from wechat.miniprogram import MiniProgramClient
from wechat.simulator import SimulatorConfig, SimulatorState, create_simulator_blueprint
from wechat.tokens import RedisTokenStore
from wechat.transport import Transport
from wechat.wecom import WeComClient
from wecom import oauth


@dataclass(frozen=True)
class WeChatClients:
    transport: Transport
    miniprogram: MiniProgramClient
    wecom: WeComClient

    async def aclose(self) -> None:
        await self.transport.aclose()


def create_wechat_clients(settings: Settings, redis: Any) -> WeChatClients:
    wechat_base, wecom_base = settings.api_bases()
    transport = Transport(timeout=settings.wechat_timeout)
    tokens = RedisTokenStore(redis)
    return WeChatClients(
        transport=transport,
        miniprogram=MiniProgramClient(
            settings.wechat_appid, settings.wechat_secret, wechat_base, transport, tokens
        ),
        wecom=WeComClient(
            settings.wecom_corp_id,
            settings.wecom_secret,
            settings.wecom_agent_id,
            wecom_base,
            transport,
            tokens,
        ),
    )


def setup_wechat(app: Sanic[Any, Any], settings: Settings) -> None:
    # Registered after setup_redis: start listeners run in registration order, stop ones reversed.
    @app.before_server_start
    async def open_wechat(app: Sanic[Any, Any]) -> None:
        app.ctx.wechat = create_wechat_clients(settings, app.ctx.redis)

    @app.after_server_stop
    async def close_wechat(app: Sanic[Any, Any]) -> None:
        await app.ctx.wechat.aclose()


def wecom_authorize_base(settings: Settings) -> str:
    """Where WeCom OAuth sends the browser: WeCom's page, or with the simulator on, the
    simulator's stand-in (WeCom's page would refuse the simulator's corp id). A path on this site
    when the simulator is mounted, so it works under whatever host the browser used."""
    if not settings.simulator:
        return oauth.AUTHORIZE_URL
    base = settings.wecom_api_base.rstrip("/") or f"{SIMULATOR_PREFIX}/wecom"
    return f"{base}/connect/oauth2/authorize"


def simulator_config(settings: Settings) -> SimulatorConfig:
    """The simulator accepts exactly the credentials the app is configured with, and sends WeCom
    callbacks to this app's own callback endpoint."""
    return SimulatorConfig(
        appid=settings.wechat_appid,
        secret=settings.wechat_secret,
        corp_id=settings.wecom_corp_id,
        corp_secret=settings.wecom_secret,
        agent_id=settings.wecom_agent_id,
        callback_url=f"{settings.public_base}/wecom/callback",
        callback_token=settings.wecom_token,
        callback_aes_key=settings.wecom_aes_key,
    )


def setup_simulator(app: Sanic[Any, Any], settings: Settings) -> None:
    state = SimulatorState()
    app.ctx.simulator_state = state
    group = create_simulator_blueprint(state, simulator_config(settings))
    # The simulator stands in for Tencent; its routes are not part of our API documentation.
    for blueprint in group:
        for future in getattr(blueprint, "_future_routes", ()):
            openapi.exclude()(future.handler)
    app.blueprint(group, url_prefix=SIMULATOR_PREFIX)
