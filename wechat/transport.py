"""One pooled HTTP client for every call to Tencent: timeouts, retries, errcode parsing.

Retries follow what each failure tells us. Connection failures, timeouts, HTTP 5xx and
``errcode -1`` are retried with exponential backoff and jitter, but a call that changes something
(``idempotent=False``: send a message, file an approval) is retried only when the request surely
never reached Tencent (connect errors, pool timeout) or Tencent said ``-1`` (nothing done, try
again); otherwise a read timeout could send a message twice.

Around the retries sits a circuit breaker per API base (``wechat/circuit.py``): once calls keep
finding no usable answer, later ones fail at once instead of each waiting out timeouts.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx

from wechat.circuit import CircuitBreaker
from wechat.errors import SystemBusy, WeChatError, WeChatUnavailable, error_for
from wechat.pool import ShardedPool

logger = logging.getLogger(__name__)

Params = Mapping[str, str | int]
JsonObject = dict[str, Any]
T = TypeVar("T")

_random = random.SystemRandom()

# Requests that certainly never left this process, so retrying cannot duplicate a side effect.
_UNSENT_ERRORS = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


@dataclass(frozen=True)
class RetryPolicy:
    """``attempts`` counts the first try; ``attempts=1`` disables retries."""

    attempts: int = 3
    base_delay: float = 0.2
    max_delay: float = 2.0

    def delay(self, retry_number: int) -> float:
        # Equal jitter: callers that failed together back off apart, yet never retry instantly.
        ceiling = min(self.max_delay, self.base_delay * 2.0**retry_number)
        return ceiling / 2 * (1 + _random.random())


class _RedactQuery(logging.Filter):
    """httpx logs each request URL at INFO; Tencent's query strings carry secrets, access
    tokens and login codes, so the query is cut before any handler sees it."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(
                _without_query(arg) if isinstance(arg, httpx.URL) else arg for arg in record.args
            )
        return True


_REDACT_QUERY = _RedactQuery()


def _without_query(url: httpx.URL) -> str:
    return f"{url.scheme}://{url.netloc.decode('ascii')}{url.path}"


class Transport:
    """Owns one ``httpx.AsyncClient``; share a single instance between all clients of a process."""

    def __init__(
        self,
        *,
        timeout: float = 5.0,
        connect_timeout: float = 3.0,
        retry: RetryPolicy | None = None,
        max_connections: int = 1000,
        pool_shards: int = 8,
        trust_env: bool = True,
        breaker: CircuitBreaker | None = None,
    ) -> None:
        httpx_logger = logging.getLogger("httpx")
        if _REDACT_QUERY not in httpx_logger.filters:
            httpx_logger.addFilter(_REDACT_QUERY)
        self.retry = retry or RetryPolicy()
        self.breaker = breaker or CircuitBreaker()
        self._client = httpx.AsyncClient(
            # The pool wait shares the request timeout: a saturated pool must fail like a slow API.
            timeout=httpx.Timeout(timeout, connect=min(connect_timeout, timeout)),
            transport=ShardedPool(
                shards=pool_shards, max_connections=max_connections, trust_env=trust_env
            ),
            follow_redirects=False,
            trust_env=trust_env,
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    async def __aenter__(self) -> Transport:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def request_json(
        self,
        method: str,
        url: str,
        *,
        params: Params | None = None,
        json_body: Mapping[str, Any] | None = None,
        idempotent: bool = True,
    ) -> JsonObject:
        """The decoded JSON object; raises a :class:`WeChatError` for a non-zero errcode."""
        return await self._request(method, url, params, json_body, idempotent, _decode_json)

    async def request_bytes(
        self,
        method: str,
        url: str,
        *,
        params: Params | None = None,
        json_body: Mapping[str, Any] | None = None,
        idempotent: bool = True,
    ) -> bytes:
        """The raw body of a successful binary answer; Tencent reports errors for such calls
        as JSON, which is raised as for :meth:`request_json`."""
        return await self._request(method, url, params, json_body, idempotent, _decode_bytes)

    async def _request(
        self,
        method: str,
        url: str,
        params: Params | None,
        json_body: Mapping[str, Any] | None,
        idempotent: bool,
        decode: Callable[[httpx.Response], T],
    ) -> T:
        parsed = httpx.URL(url)
        # The breaker's unit: Tencent's mini-program and WeCom APIs are separate hosts.
        base = f"{parsed.scheme}://{parsed.netloc.decode('ascii')}"
        self.breaker.before_call(base)
        try:
            result = await self._attempts(method, url, params, json_body, idempotent, decode)
        except (WeChatUnavailable, SystemBusy):
            self.breaker.failed(base)
            raise
        except WeChatError:
            # An errcode is an answer: Tencent is up, whatever it thought of this call.
            self.breaker.succeeded(base)
            raise
        except BaseException:
            self.breaker.abandoned(base)
            raise
        self.breaker.succeeded(base)
        return result

    async def _attempts(
        self,
        method: str,
        url: str,
        params: Params | None,
        json_body: Mapping[str, Any] | None,
        idempotent: bool,
        decode: Callable[[httpx.Response], T],
    ) -> T:
        path = httpx.URL(url).path
        attempts = max(1, self.retry.attempts)
        for attempt in range(1, attempts + 1):
            last = attempt == attempts
            try:
                response = await self._client.request(
                    method,
                    url,
                    params=dict(params) if params else None,
                    json=dict(json_body) if json_body is not None else None,
                )
            except httpx.TransportError as exc:
                reason = type(exc).__name__
                if last or not (idempotent or isinstance(exc, _UNSENT_ERRORS)):
                    raise WeChatUnavailable(f"{method} {path}: {reason}") from exc
            except httpx.RequestError as exc:
                raise WeChatUnavailable(f"{method} {path}: {type(exc).__name__}") from exc
            else:
                if response.status_code >= 500:
                    reason = f"HTTP {response.status_code}"
                    if last or not idempotent:
                        raise WeChatUnavailable(f"{method} {path}: {reason}")
                else:
                    try:
                        return decode(response)
                    except SystemBusy:
                        if last:
                            raise
                        reason = "errcode -1"
            delay = self.retry.delay(attempt - 1)
            logger.warning(
                "wechat %s %s failed (%s); retry %d of %d in %.2fs",
                method,
                path,
                reason,
                attempt,
                attempts - 1,
                delay,
            )
            await asyncio.sleep(delay)
        raise AssertionError("unreachable: the last attempt returns or raises")


def optional_str(data: JsonObject, name: str) -> str | None:
    """A field Tencent may omit or send empty, as ``str | None``."""
    value = data.get(name)
    return None if value in (None, "") else str(value)


def optional_int(data: JsonObject, name: str) -> int | None:
    value = data.get(name)
    return None if value in (None, "") else int(value)


def _checked_body(response: httpx.Response) -> bytes:
    if response.status_code != 200:
        # Tencent answers 200 even for errors; anything else is a proxy or a wrong api_base.
        raise WeChatUnavailable(
            f"{response.request.url.path}: unexpected HTTP {response.status_code}"
        )
    return response.content


def _json_object(response: httpx.Response, body: bytes) -> JsonObject:
    path = response.request.url.path
    try:
        data = json.loads(body)
    except ValueError as exc:
        raise WeChatUnavailable(f"{path}: answer is not JSON") from exc
    if not isinstance(data, dict):
        raise WeChatUnavailable(f"{path}: answer is not a JSON object")
    errcode = int(data.get("errcode") or 0)
    if errcode != 0:
        raise error_for(errcode, str(data.get("errmsg", "")))
    return data


def _decode_json(response: httpx.Response) -> JsonObject:
    return _json_object(response, _checked_body(response))


def _decode_bytes(response: httpx.Response) -> bytes:
    body = _checked_body(response)
    if "json" in response.headers.get("content-type", "") or body[:1] == b"{":
        _json_object(response, body)
        raise WeChatUnavailable(
            f"{response.request.url.path}: expected binary content, got JSON without an error"
        )
    return body
