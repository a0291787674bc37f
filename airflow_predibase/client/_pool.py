"""One `httpx.AsyncClient` per running event loop, shared by every async client in it.

A client per trigger costs ~870 KB and ~21 ms (a fresh SSL context each), which thousands
of deferred tasks cannot afford; one shared client costs a few KB per trigger. The pool is
small and a semaphore bounds in-flight requests, so waiters queue on the semaphore instead
of spinning inside httpcore's pool (where they would hit PoolTimeout). Nothing here is
specific to one connection: base URL, token and timeouts travel with each request.
"""

from __future__ import annotations

import asyncio
import weakref

import httpx

from airflow_predibase.client._base import ClientCore

MAX_IN_FLIGHT = 10

_shared: weakref.WeakKeyDictionary[
    asyncio.AbstractEventLoop, tuple[httpx.AsyncClient, asyncio.Semaphore]
] = weakref.WeakKeyDictionary()


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
        client = httpx.AsyncClient(
            timeout=httpx.Timeout(30.0, connect=10.0), limits=ClientCore.POOL_LIMITS
        )
        pool = _shared[loop] = (client, asyncio.Semaphore(MAX_IN_FLIGHT))
    return pool
