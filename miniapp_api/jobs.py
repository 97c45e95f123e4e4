from __future__ import annotations

from typing import Any

from sanic import Sanic

from miniapp_api.settings import Settings


def setup_jobs(app: Sanic[Any, Any], settings: Settings) -> None:
    pass


def run_arq_worker(settings: Settings) -> None:
    pass
