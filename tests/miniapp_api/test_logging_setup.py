from __future__ import annotations

import json
import logging
import sys

from miniapp_api.logging_setup import (
    DevFormatter,
    JsonFormatter,
    install_request_id_factory,
    redact,
    request_id_var,
)


def _record(name: str = "suban.test", msg: str = "hello %s", **extra: object) -> logging.LogRecord:
    install_request_id_factory()
    token = request_id_var.set("rid-42")
    try:
        record = logging.getLogger(name).makeRecord(
            name,
            logging.INFO,
            __file__,
            1,
            msg,
            ("世界",) if "%s" in msg else (),
            None,
            extra=extra or None,
        )
    finally:
        request_id_var.reset(token)
    return record


def test_json_lines_carry_the_request_id() -> None:
    line = JsonFormatter().format(_record())
    entry = json.loads(line)
    assert entry["request_id"] == "rid-42"
    assert entry["message"] == "hello 世界"
    assert entry["level"] == "INFO"
    assert "\n" not in line


def test_json_lines_include_the_traceback() -> None:
    try:
        raise ValueError("x")
    except ValueError:
        record = _record()
        record.exc_info = sys.exc_info()
    entry = json.loads(JsonFormatter().format(record))
    assert "ValueError" in entry["traceback"]


def test_access_lines_lose_their_query_string() -> None:
    record = _record("sanic.access", "", request="GET /api/v1/progress?check=301X", status=200)
    entry = json.loads(JsonFormatter().format(record))
    assert entry["request"] == "GET /api/v1/progress?…"
    assert "301X" not in DevFormatter().format(record)


def test_personal_data_is_masked_in_messages_and_tracebacks() -> None:
    try:
        raise ValueError("bad person 44010319850612301X phone 13812345678")
    except ValueError:
        record = _record(msg="lookup %s for 13812345678")
        record.exc_info = sys.exc_info()
    for line in (JsonFormatter().format(record), DevFormatter().format(record)):
        assert "44010319850612301X" not in line
        assert "13812345678" not in line
        assert "4401**********301X" in line
        assert "138****5678" in line


def test_redact_leaves_ordinary_numbers_alone() -> None:
    text = "took 1234567890123ms, order 91440103MA59D8QK16, port 6379, 2026-11-28"
    assert redact(text) == text


def test_dev_lines_are_readable_with_the_request_id() -> None:
    line = DevFormatter().format(_record())
    assert "[rid-42]" in line
    assert line.endswith("suban.test: hello 世界")
