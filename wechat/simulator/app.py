"""Assemble the simulator: a blueprint group to mount in the app (dev mode), or a standalone app."""

from __future__ import annotations

from types import SimpleNamespace

from sanic import Blueprint, Sanic
from sanic.blueprint_group import BlueprintGroup
from sanic.config import Config
from sanic.exceptions import SanicException

from wechat.simulator.config import SimulatorConfig
from wechat.simulator.control_routes import control_blueprint
from wechat.simulator.miniprogram_routes import miniprogram_blueprint
from wechat.simulator.state import CallbackTarget, SimulatorState
from wechat.simulator.wecom_routes import wecom_blueprint

DEFAULT_APP_NAME = "wechat_simulator"

SimulatorApp = Sanic[Config, SimpleNamespace]


def create_simulator_blueprint(state: SimulatorState, config: SimulatorConfig) -> BlueprintGroup:
    """A blueprint group with ``/wechat`` (mini-program API), ``/wecom`` (WeCom API) and
    ``/control``; mount it under a prefix, e.g. ``app.blueprint(group, url_prefix="/_sim")``, and
    point the clients' api bases at ``<origin>/_sim/wechat`` and ``<origin>/_sim/wecom``."""
    if state.callback is None and (
        config.callback_url and config.callback_token and config.callback_aes_key
    ):
        state.callback = CallbackTarget(
            url=config.callback_url,
            token=config.callback_token,
            aes_key=config.callback_aes_key,
        )
    return Blueprint.group(
        miniprogram_blueprint(state, config),
        wecom_blueprint(state, config),
        control_blueprint(state, config),
    )


def create_simulator_app(
    config: SimulatorConfig | None = None,
    *,
    state: SimulatorState | None = None,
    name: str = DEFAULT_APP_NAME,
) -> SimulatorApp:
    """A standalone simulator app, routes at ``/wechat``, ``/wecom``, ``/control``. Sanic keeps a
    process-wide registry of app names, so a second app in one process gets a numbered name."""
    config = config or SimulatorConfig()
    state = state or SimulatorState()
    app = _new_app(name)
    # sanic-ext (installed for the main app) would otherwise attach itself and its /docs routes.
    app.config.AUTO_EXTEND = False
    app.config.FALLBACK_ERROR_FORMAT = "json"
    app.ctx.simulator_state = state
    app.ctx.simulator_config = config
    app.blueprint(create_simulator_blueprint(state, config))
    return app


def _new_app(name: str) -> SimulatorApp:
    # Look the name up rather than rely on Sanic refusing duplicates: in test mode it silently
    # replaces the registered app instead.
    candidate, number = name, 1
    while _registered(candidate):
        number += 1
        candidate = f"{name}_{number}"
    return Sanic(candidate)


def _registered(name: str) -> bool:
    try:
        Sanic.get_app(name)
    except SanicException:
        return False
    return True
