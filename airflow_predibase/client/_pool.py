"""One sharded HTTP pool per running event loop, shared by every async client in it.

A client per trigger costs ~900 KB and ~20 ms of CPU (a fresh SSL context each), which
thousands of deferred tasks cannot afford. So every `AsyncPredibaseClient` of a loop sends
through one `ShardedAsyncClient`; nothing here is specific to one connection: base URL,
token and timeouts travel with each request.

The shape, `SHARDS` x `CONNECTIONS` (32 x 2):

    ShardedAsyncClient ── limiter: Semaphore(MAX_IN_FLIGHT = 64), handed to each client
      ├── shard 0:  httpx.AsyncClient, at most 2 connections ─┐
      ├── ...                                                  ├─ one SSL context
      └── shard 31: httpx.AsyncClient, at most 2 connections ─┘

- Why shards: throughput is bounded by requests in flight / round trip (10 at 50 ms caps
  a loop near 170 polls/s), but one httpx pool with many connections gets slower, not
  faster: httpcore scans every connection, and checks each one's TLS socket, two or three
  times per request (64 connections in one pool: ~90 requests/s, 8.8 ms of CPU each).
  Measured back to back over TLS at 50 ms (2 cores, busy): 8 x 8 gave 390-560 requests/s
  at 0.94-0.98 ms of CPU each; 32 x 2 gave 710-940 at 0.66-0.70 ms; 64 x 1 was no better
  than 32 x 2. 64 in flight serve ~1,000 polls/s at a 50 ms round trip, ~400 at 150 ms.
- Why a limiter outside the pools: waiters queue on the semaphore, never inside httpcore
  (where they would hit PoolTimeout). Holding a permit guarantees some shard has a free
  connection, and `send` takes the least busy one, lowest index first: under a light load
  the requests stay on the first shards, whose connections stay warm, and the others'
  connections expire.
- Proxies and certificates: each shard is a default `httpx.AsyncClient` (`trust_env`), so
  HTTPS_PROXY / HTTP_PROXY / ALL_PROXY / NO_PROXY are honoured by httpx itself, and the one
  SSL context is built as httpx builds its default (SSL_CERT_FILE / SSL_CERT_DIR, else
  certifi).
"""

from __future__ import annotations

import asyncio
import weakref
from types import TracebackType
from typing import Any

import httpx

#: Pools side by side in a loop's shared client.
SHARDS = 32
#: Connections (and requests in flight) per shard.
CONNECTIONS = 2
#: Requests in flight across the loop's shared client: its limiter's size.
MAX_IN_FLIGHT = SHARDS * CONNECTIONS

_TIMEOUT = httpx.Timeout(30.0, connect=10.0)

_shared: weakref.WeakKeyDictionary[
    asyncio.AbstractEventLoop, tuple[ShardedAsyncClient, asyncio.Semaphore]
] = weakref.WeakKeyDictionary()


class ShardedAsyncClient(httpx.AsyncClient):
    """An `httpx.AsyncClient` that sends each request on the least busy of its shards.

    Only `send` is sharded, which is all `AsyncPredibaseClient` calls; the inherited client
    itself never sends. Bound requests in flight to ``shards * connections`` with a
    semaphore (the shared one from `shared_async_http`), or requests queue inside a shard.
    """

    def __init__(
        self,
        shards: int = SHARDS,
        connections: int = CONNECTIONS,
        *,
        timeout: httpx.Timeout = _TIMEOUT,
    ) -> None:
        # Built once, as httpx builds its default: SSL_CERT_FILE / SSL_CERT_DIR, else certifi.
        verify = httpx.create_ssl_context(trust_env=True)
        limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
        super().__init__(timeout=timeout, verify=verify, limits=limits)
        self.shards = [
            httpx.AsyncClient(timeout=timeout, verify=verify, limits=limits) for _ in range(shards)
        ]
        #: Requests in flight per shard.
        self.busy = [0] * shards

    async def send(self, request: httpx.Request, **kwargs: Any) -> httpx.Response:
        busy = self.busy
        index = busy.index(min(busy))
        busy[index] += 1
        try:
            return await self.shards[index].send(request, **kwargs)
        finally:
            busy[index] -= 1

    async def aclose(self) -> None:
        for shard in self.shards:
            await shard.aclose()
        await super().aclose()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None = None,
        exc_value: BaseException | None = None,
        traceback: TracebackType | None = None,
    ) -> None:
        for shard in self.shards:
            await shard.aclose()
        await super().__aexit__(exc_type, exc_value, traceback)


def shared_async_http() -> tuple[httpx.AsyncClient, asyncio.Semaphore]:
    """The running loop's shared client and in-flight limiter, created on first use.

    Keyed by loop because `dag.test()` runs each trigger in a fresh loop, and an httpx
    client must not be used across loops.
    """
    loop = asyncio.get_running_loop()
    # A semaphore that was ever contended refers to its loop, so a dead loop's entry would
    # never be dropped by the weak dict alone.
    for old in [old for old in _shared if old.is_closed()]:
        del _shared[old]
    pool = _shared.get(loop)
    if pool is None:
        pool = _shared[loop] = (ShardedAsyncClient(), asyncio.Semaphore(MAX_IN_FLIGHT))
    return pool
