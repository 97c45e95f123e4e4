"""Several httpcore connection pools behind one httpx client.

httpcore 1.0's pool re-scans every connection for every waiting request whenever a request starts
or finishes, and counts all connections (not only idle ones) against the keep-alive limit. At
hundreds of concurrent requests that bookkeeping costs more CPU than the requests themselves
(measured: 300 concurrent calls to a local server took 3 s of client CPU in one pool). Spreading
requests round-robin over a few smaller pools keeps each scan short.
"""

from __future__ import annotations

import itertools

import httpx


class ShardedPool(httpx.AsyncBaseTransport):
    def __init__(self, *, shards: int, max_connections: int, trust_env: bool = True) -> None:
        per_shard = max(1, -(-max_connections // shards))
        # Keep-alive limit equal to the connection limit: a lower one makes httpcore close
        # connections it is about to need whenever the pool is above it.
        limits = httpx.Limits(max_connections=per_shard, max_keepalive_connections=per_shard)
        # One TLS context for all shards: loading the CA bundle costs ~50 ms each time.
        tls = httpx.create_ssl_context(trust_env=trust_env)
        self._shards = [
            httpx.AsyncHTTPTransport(verify=tls, limits=limits, trust_env=trust_env)
            for _ in range(max(1, shards))
        ]
        self._next = itertools.cycle(self._shards)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return await next(self._next).handle_async_request(request)

    async def aclose(self) -> None:
        for shard in self._shards:
            await shard.aclose()
