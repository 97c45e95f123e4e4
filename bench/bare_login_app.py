"""The login yardstick: the bare Sanic app of `bench/bare_app.py` (`GET /healthz`) plus
`POST /login`, which does only the WeChat part of a login: the project's own `MiniProgramClient`
(`wechat/`: one pooled httpx client, `ShardedPool`) exchanges the code at the simulator and the
route answers a login-shaped JSON. No database, no Redis, no middleware.

    BENCH_WECHAT_API_BASE=http://127.0.0.1:8903/wechat \\
        python bench/bare_login_app.py --port 8101 --workers 2

`bench/login.py` starts it; suban's login over this route's rate is the cost of everything a real
login adds to the WeChat round trip (Tortoise + PostgreSQL, Redis, the app's middleware).
"""

from __future__ import annotations

import argparse
import os
import secrets
import sys
from pathlib import Path
from typing import Any

from sanic import HTTPResponse, Request, Sanic
from sanic.response import json

sys.path[:0] = [str(Path(__file__).resolve().parent), str(Path(__file__).resolve().parents[1])]

from bare_app import create_bare_app  # noqa: E402

from wechat.miniprogram import MiniProgramClient  # noqa: E402
from wechat.transport import Transport  # noqa: E402


class _NoTokens:
    """code2session sends appid + secret, never an access token."""

    async def get(self, key: Any, fetch: Any) -> str:
        raise AssertionError("code2session needs no access token")


def create_bare_login_app() -> Sanic:
    app = create_bare_app()
    base = os.environ["BENCH_WECHAT_API_BASE"]
    appid = os.environ.get("BENCH_WECHAT_APPID", "wx-sim-appid")
    secret = os.environ.get("BENCH_WECHAT_SECRET", "wx-sim-secret")

    @app.before_server_start
    async def open_client(app: Sanic) -> None:
        # The same construction as miniapp_api/wechat_setup.py.
        app.ctx.transport = Transport(timeout=5.0)
        app.ctx.mp = MiniProgramClient(appid, secret, base, app.ctx.transport, _NoTokens())  # type: ignore[arg-type]

    @app.after_server_stop
    async def close_client(app: Sanic) -> None:
        await app.ctx.transport.aclose()

    @app.post("/login")
    async def login(request: Request) -> HTTPResponse:
        session = await app.ctx.mp.code2session(request.json["code"])
        return json(
            {
                "token": secrets.token_urlsafe(32) if session.openid else "",
                "expires_in": 7200,
                "realname_verified": False,
            }
        )

    return app


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8101)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    from sanic.worker.loader import AppLoader

    loader = AppLoader(factory=create_bare_login_app)
    app = loader.load()
    app.prepare(host=args.host, port=args.port, workers=args.workers, access_log=False, motd=False)
    Sanic.serve(primary=app, app_loader=loader)


if __name__ == "__main__":
    main()
