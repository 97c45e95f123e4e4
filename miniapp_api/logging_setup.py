"""Logging: JSON lines in production, readable lines in dev, each carrying the request id.

The request id travels in a context variable, so log calls deep inside domain code need no request
argument to be traceable.
"""

from __future__ import annotations

import json
import logging
import logging.config
import re
import sys
from collections.abc import Callable
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

request_id_var: ContextVar[str] = ContextVar("suban_request_id", default="-")
# Where log records get their request id; the web app plugs in one that knows Sanic's requests.
_request_id_source: Callable[[], str] = request_id_var.get


def set_request_id_source(source: Callable[[], str]) -> None:
    global _request_id_source
    _request_id_source = source


# Fields Sanic's access logger passes as `extra`; everything else on a record stays out of the line.
_ACCESS_FIELDS = ("host", "request", "status", "byte", "duration")


def install_request_id_factory() -> None:
    """Stamp every log record with the current request id, whichever handler ends up with it
    (ours, a test's capture, a library's). Installed once per process."""
    previous = logging.getLogRecordFactory()
    if getattr(previous, "_suban_request_id", False):
        return

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        record.request_id = _request_id_source()
        return record

    factory._suban_request_id = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(factory)


# The last line of defence for personal data in logs (PIPL art. 51): whatever a library or an
# exception message puts into a line, ID numbers, mobile numbers and URL query strings (which can
# carry a login code or the last digits of an ID number) are masked before the line is written.
_ID_NUMBER = re.compile(r"(?<![0-9A-Za-z])(\d{4})\d{10}(\d{3}[\dXx])(?![0-9A-Za-z])")
_MOBILE = re.compile(r"(?<!\d)(1[3-9]\d)\d{4}(\d{4})(?!\d)")
_QUERY = re.compile(r"(/[^\s?'\"<>]*)\?[^\s'\"<>]*")


def redact(text: str) -> str:
    text = _QUERY.sub(r"\1?…", text)
    text = _ID_NUMBER.sub(r"\1**********\2", text)
    return _MOBILE.sub(r"\1****\2", text)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "request_id": getattr(record, "request_id", "-"),
            "message": record.getMessage(),
        }
        for name in _ACCESS_FIELDS:
            value = getattr(record, name, None)
            if value not in (None, ""):
                entry[name] = value
        if record.exc_info:
            entry["traceback"] = self.formatException(record.exc_info)
        return redact(json.dumps(entry, ensure_ascii=False, default=str))


class DevFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s [%(request_id)s] %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        if record.name == "sanic.access" and not record.getMessage():
            record.msg = " ".join(
                str(getattr(record, name, "")) for name in ("request", "status", "byte")
            )
            record.args = None
        return redact(super().format(record))


def log_config(production: bool, level: str) -> dict[str, Any]:
    formatter = "json" if production else "dev"
    handler = {
        "class": "logging.StreamHandler",
        "formatter": formatter,
        "stream": sys.stderr,
    }
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": JsonFormatter}, "dev": {"()": DevFormatter}},
        "handlers": {"stderr": handler},
        "root": {"level": level, "handlers": ["stderr"]},
        # Sanic's loggers come with handlers of their own; route them all through ours once.
        "loggers": {
            name: {"level": level, "handlers": [], "propagate": True}
            for name in (
                "sanic.root",
                "sanic.error",
                "sanic.access",
                "sanic.server",
                "sanic.websockets",
                "tortoise",
                "suban",
            )
        }
        | {
            # Their DEBUG lines include SQL parameters and full URLs: never below INFO.
            "tortoise.db_client": {"level": "INFO", "handlers": [], "propagate": True},
            "aiosqlite": {"level": "INFO", "handlers": [], "propagate": True},
            # Its INFO lines show each job's arguments.
            "arq": {"level": "WARNING", "handlers": [], "propagate": True},
            "httpx": {"level": "WARNING", "handlers": [], "propagate": True},
            "httpcore": {"level": "WARNING", "handlers": [], "propagate": True},
        },
    }


def configure_logging(production: bool, level: str = "INFO") -> None:
    install_request_id_factory()
    logging.config.dictConfig(log_config(production, level))
