"""A simulator of the Tencent APIs we call, for dev mode and tests (see API.md, "Simulator
conventions"). The only part of ``wechat`` that imports Sanic."""

from wechat.simulator.app import create_simulator_app, create_simulator_blueprint
from wechat.simulator.config import SimulatorConfig
from wechat.simulator.state import ENDPOINTS, CallbackTarget, SimulatorState

__all__ = [
    "ENDPOINTS",
    "CallbackTarget",
    "SimulatorConfig",
    "SimulatorState",
    "create_simulator_app",
    "create_simulator_blueprint",
]
