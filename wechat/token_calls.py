"""Calls that carry an ``access_token``: the plumbing both the mini-program and WeCom clients use.

A token that Tencent rejects (40001/40014) or reports expired (42001) is dropped with
compare-and-delete, a fresh one is obtained through the store's single-flight path, and the call is
retried exactly once. A second token error is raised: looping would hammer the token endpoint
while something else (a wrong secret, a clock problem) is wrong.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

from wechat.errors import TOKEN_ERRORS
from wechat.tokens import TokenFetcher, TokenKey, TokenStore
from wechat.transport import JsonObject, Params, Transport

logger = logging.getLogger(__name__)

T = TypeVar("T")


class TokenCalls:
    def __init__(
        self,
        api_base: str,
        transport: Transport,
        tokens: TokenStore,
        key: TokenKey,
        fetch: TokenFetcher,
    ) -> None:
        self.api_base = api_base.rstrip("/")
        self.transport = transport
        self._tokens = tokens
        self._key = key
        self._fetch = fetch

    def url(self, path: str) -> str:
        return f"{self.api_base}{path}"

    async def access_token(self) -> str:
        return await self._tokens.get(self._key, self._fetch)

    async def request_json(
        self,
        method: str,
        path: str,
        *,
        params: Params | None = None,
        body: Mapping[str, Any] | None = None,
        idempotent: bool = True,
    ) -> JsonObject:
        async def send(token: str) -> JsonObject:
            return await self.transport.request_json(
                method,
                self.url(path),
                params={**(params or {}), "access_token": token},
                json_body=body,
                idempotent=idempotent,
            )

        return await self._with_token(path, send)

    async def request_bytes(
        self, method: str, path: str, *, body: Mapping[str, Any] | None = None
    ) -> bytes:
        async def send(token: str) -> bytes:
            return await self.transport.request_bytes(
                method, self.url(path), params={"access_token": token}, json_body=body
            )

        return await self._with_token(path, send)

    async def _with_token(self, path: str, send: Callable[[str], Awaitable[T]]) -> T:
        token = await self.access_token()
        try:
            return await send(token)
        except TOKEN_ERRORS as exc:
            logger.info(
                "wechat %s token rejected by %s (errcode %d); refreshing and retrying once",
                self._key.kind,
                path,
                exc.errcode,
            )
            await self._tokens.invalidate(self._key, token)
        return await send(await self.access_token())
