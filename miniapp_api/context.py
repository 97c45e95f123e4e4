"""What the app holds while it runs, typed so listeners and handlers know what ``app.ctx`` has."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from auth.pii import Keyring
from miniapp_api.settings import Settings

if TYPE_CHECKING:
    import redis.asyncio as redis_asyncio
    from sanic import Sanic
    from sanic.config import Config

    from miniapp_api.wechat_setup import WeChatClients


@dataclass
class AppContext:
    settings: Settings
    # Seals and opens personal data; built from the settings' cipher and keys.
    keyring: Keyring
    # Filled by before_server_start listeners; absent until the server starts.
    redis: redis_asyncio.Redis = field(init=False)
    wechat: WeChatClients = field(init=False)
    # Only in dev mode, where the WeChat/WeCom simulator is mounted at /_sim.
    simulator_state: Any = None


if TYPE_CHECKING:
    SubanApp = Sanic[Config, AppContext]
else:
    SubanApp = Any
