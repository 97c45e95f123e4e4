"""The yardstick: a bare Sanic JSON route, served like `suban serve` (same workers, no middleware).

python bench/bare_app.py --port 8101 --workers 2
"""

from __future__ import annotations

import argparse

from sanic import HTTPResponse, Request, Sanic
from sanic.response import json


def create_bare_app() -> Sanic:
    app = Sanic("bare", configure_logging=False)
    app.config.ACCESS_LOG = False

    @app.get("/healthz")
    async def healthz(request: Request) -> HTTPResponse:
        return json({"status": "ok"})

    return app


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8101)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    from sanic.worker.loader import AppLoader

    loader = AppLoader(factory=create_bare_app)
    app = loader.load()
    app.prepare(host=args.host, port=args.port, workers=args.workers, access_log=False, motd=False)
    Sanic.serve(primary=app, app_loader=loader)


if __name__ == "__main__":
    main()
