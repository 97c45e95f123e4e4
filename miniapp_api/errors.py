"""The contract's one error shape, for every failure the service answers.

``{"error": {"code": "UPPER_SNAKE", "message": "中文说明", "fields": {...}}}``: raised as
:class:`ApiError` by routes, mapped from Sanic's own exceptions (unknown route, wrong method,
body too large, malformed JSON), and, for anything unexpected, a 500 carrying the request id
while the traceback goes only to the log.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import asyncpg  # type: ignore[import-untyped]  # no stubs; only its exception types are used
from redis import exceptions as redis_exc
from sanic import HTTPResponse, Request, Sanic
from sanic import exceptions as sanic_exc
from sanic.handlers import ErrorHandler
from sanic.response import json

from miniapp_api.request_context import current_request_id, request_id_of
from wechat.errors import WeChatError, WeChatUnavailable

log = logging.getLogger("suban.errors")


class ApiError(Exception):
    """An answer in the contract's error shape. Raise it from a route or a helper of one."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        fields: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(f"{status} {code}")
        self.status = status
        self.code = code
        self.message = message
        self.fields = dict(fields) if fields else None
        self.headers = dict(headers) if headers else {}
        # More machine-readable facts about the error, inside the error object.
        self.details = dict(details) if details else {}


class ValidationFailed(ApiError):
    def __init__(self, fields: Mapping[str, str], message: str = "提交的内容有误") -> None:
        super().__init__(422, "VALIDATION_FAILED", message, fields=fields)


class BadRequest(ApiError):
    def __init__(self, message: str = "请求格式有误") -> None:
        super().__init__(400, "BAD_REQUEST", message)


class NotFound(ApiError):
    def __init__(self, message: str = "找不到请求的资源") -> None:
        super().__init__(404, "NOT_FOUND", message)


class Unauthorized(ApiError):
    def __init__(self, message: str = "请先登录", code: str = "UNAUTHORIZED") -> None:
        super().__init__(401, code, message, headers={"WWW-Authenticate": "Bearer"})


class DependencyDown(ApiError):
    def __init__(self, message: str, failing: list[str] | None = None) -> None:
        super().__init__(
            503,
            "DEPENDENCY_DOWN",
            message,
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
            details={"failing": failing or []},
        )


# Long enough for a restart of Redis or PostgreSQL, short enough that nobody gives up.
RETRY_AFTER_SECONDS = 5

REDIS_DOWN = DependencyDown("缓存服务（Redis）暂时不可用，请稍后再试", ["redis"])
DATABASE_DOWN = DependencyDown("数据库暂时不可用，请稍后再试", ["database"])

# A lost or refused connection, not a wrong query: the dependency is down or restarting.
# (redis-py's BusyLoadingError, Redis loading its data after a restart, is a ConnectionError.)
REDIS_DOWN_ERRORS = (redis_exc.ConnectionError, redis_exc.TimeoutError)
_DATABASE_DOWN_ERRORS = (
    asyncpg.PostgresConnectionError,  # class 08: connection failure, does not exist
    asyncpg.CannotConnectNowError,  # 57P03: starting up or shutting down
    asyncpg.AdminShutdownError,  # 57P01: a fast stop ended the session
    asyncpg.TooManyConnectionsError,
    asyncpg.InterfaceError,  # "connection is closed" on a connection the server dropped
    # "cannot switch to state N; another operation is in progress": seen on connections the
    # server was ending during a fast stop (tests/faults/test_postgres_restart.py).
    asyncpg.InternalClientError,
)


def dependency_down(exception: BaseException) -> DependencyDown | None:
    """The 503 for an exception caused by Redis or PostgreSQL being away, else ``None``.

    Looks along the chain of causes, since drivers and the ORM wrap what the socket raised. A
    bare socket error (asyncpg opening a pool connection to a stopped server raises
    ``ConnectionRefusedError`` as it is) counts when it was raised inside asyncpg or tortoise."""
    seen: set[int] = set()
    current: BaseException | None = exception
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, REDIS_DOWN_ERRORS):
            return REDIS_DOWN
        if isinstance(current, _DATABASE_DOWN_ERRORS):
            return DATABASE_DOWN
        if isinstance(current, ConnectionError | TimeoutError) and _raised_in_database_driver(
            current
        ):
            return DATABASE_DOWN
        current = current.__cause__ or current.__context__
    return None


def _raised_in_database_driver(exception: BaseException) -> bool:
    frame = exception.__traceback__
    while frame is not None:
        module = frame.tb_frame.f_globals.get("__name__", "")
        if module.startswith(("asyncpg.", "tortoise.")):
            return True
        frame = frame.tb_next
    return False


# Sanic's own exceptions, in the contract's words. Looked up by exact class first, then by status.
_SANIC_BY_CLASS: dict[type[Exception], tuple[str, str]] = {
    sanic_exc.NotFound: ("NOT_FOUND", "找不到请求的资源"),
    sanic_exc.MethodNotAllowed: ("METHOD_NOT_ALLOWED", "不支持该请求方法"),
    sanic_exc.PayloadTooLarge: ("PAYLOAD_TOO_LARGE", "请求内容过大"),
    sanic_exc.RequestTimeout: ("REQUEST_TIMEOUT", "请求超时"),
    sanic_exc.HeaderNotFound: ("BAD_REQUEST", "缺少必要的请求头"),
    sanic_exc.InvalidHeader: ("BAD_REQUEST", "请求头格式有误"),
    sanic_exc.RangeNotSatisfiable: ("RANGE_NOT_SATISFIABLE", "请求的范围无效"),
}
_SANIC_BY_STATUS: dict[int, tuple[str, str]] = {
    400: ("BAD_REQUEST", "请求格式有误"),
    401: ("UNAUTHORIZED", "请先登录"),
    403: ("FORBIDDEN", "无权进行此操作"),
    404: ("NOT_FOUND", "找不到请求的资源"),
    405: ("METHOD_NOT_ALLOWED", "不支持该请求方法"),
    413: ("PAYLOAD_TOO_LARGE", "请求内容过大"),
    415: ("UNSUPPORTED_MEDIA_TYPE", "不支持的内容类型"),
    416: ("RANGE_NOT_SATISFIABLE", "请求的范围无效"),
    503: ("SERVICE_UNAVAILABLE", "服务暂时不可用，请稍后再试"),
}


def error_body(code: str, message: str, fields: Mapping[str, str] | None = None) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message}
    if fields:
        error["fields"] = dict(fields)
    return {"error": error}


class ContractErrorHandler(ErrorHandler):
    """Answers every exception in the contract's shape; never shows a traceback to a client."""

    def default(self, request: Request, exception: Exception) -> HTTPResponse:
        request_id = request_id_of(request) if request is not None else current_request_id()
        headers = {"X-Request-ID": request_id}
        if isinstance(exception, ApiError):
            body = error_body(exception.code, exception.message, exception.fields)
            body["error"].update(exception.details)
            return json(body, status=exception.status, headers=headers | exception.headers)
        if isinstance(exception, sanic_exc.SanicException) and exception.status_code < 500:
            status = exception.status_code
            code, message = _SANIC_BY_CLASS.get(type(exception)) or _SANIC_BY_STATUS.get(
                status, ("BAD_REQUEST", "请求有误")
            )
            if isinstance(exception, sanic_exc.MethodNotAllowed):
                allowed = getattr(exception, "allowed_methods", None)
                if allowed:
                    headers["Allow"] = ", ".join(sorted(allowed))
            return json(error_body(code, message), status=status, headers=headers)
        if isinstance(exception, WeChatUnavailable | WeChatError):
            # Whatever Tencent did, to our client it is a dependency that did not serve; the
            # errcode goes to the log (no personal data in it), not to the client.
            log.warning(
                "wechat call failed on %s: %s",
                request.path if request else "-",
                getattr(exception, "errcode", type(exception).__name__),
            )
            return json(
                error_body("WECHAT_UNAVAILABLE", "微信服务暂时不可用，请稍后再试"),
                status=503,
                headers=headers | {"Retry-After": "5"},
            )
        if isinstance(exception, sanic_exc.RequestCancelled):
            # The client went away before the answer (a timeout of its own): nobody reads this
            # response, and it is no fault of ours, so no traceback.
            log.info("client left before the answer on %s", request.path if request else "-")
            return json(error_body("CLIENT_CLOSED", "客户端已断开"), status=499, headers=headers)
        down = dependency_down(exception)
        if down is not None:
            # Expected while a dependency restarts: one line, no traceback, a clean 503.
            log.warning(
                "%s down on %s %s (%s)",
                down.details["failing"][0],
                request.method if request else "-",
                request.path if request else "-",
                type(exception).__name__,
            )
            return self.default(request, down)
        if isinstance(exception, sanic_exc.ServiceUnavailable):
            code, message = _SANIC_BY_STATUS[503]
            return json(error_body(code, message), status=503, headers=headers)
        # Unexpected: full traceback to the log under the request id, only the id to the client.
        log.error(
            "unhandled %s on %s %s",
            type(exception).__name__,
            request.method if request else "-",
            request.path if request else "-",
            exc_info=exception,
        )
        body = error_body("INTERNAL_ERROR", "服务器内部错误，请稍后再试")
        body["error"]["request_id"] = request_id
        return json(body, status=500, headers=headers)


def setup_errors(app: Sanic[Any, Any]) -> None:
    app.error_handler = ContractErrorHandler()
