"""The async client's shared pool and in-flight limiter (what thousands of triggers lean on)."""

from __future__ import annotations

import asyncio

import httpx
from predibase_fakes import SETTINGS

from airflow_predibase.client import AsyncPredibaseClient
from airflow_predibase.client._pool import MAX_IN_FLIGHT, _shared, shared_async_http


async def test_limiter_bounds_requests_in_flight() -> None:
    in_flight = peak = 0

    async def handler(request: httpx.Request) -> httpx.Response:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        for _ in range(5):  # yield to the other requests without sleeping for real
            await asyncio.sleep(0)
        in_flight -= 1
        return httpx.Response(200, json={"name": "ds", "status": "connected"})

    http = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    client = AsyncPredibaseClient(SETTINGS, http_client=http, limiter=asyncio.Semaphore(2))
    results = await asyncio.gather(*(client.get_dataset("ds") for _ in range(8)))
    assert len(results) == 8
    assert peak == 2


async def test_one_shared_client_per_loop() -> None:
    first, limiter = shared_async_http()
    second, same_limiter = shared_async_http()
    assert first is second
    assert limiter is same_limiter
    # Its shards hold exactly as many connections as requests may be in flight.
    assert sum(s._transport._pool._max_connections for s in first.shards) == MAX_IN_FLIGHT


def test_a_closed_loop_does_not_keep_its_client() -> None:
    async def contend() -> asyncio.AbstractEventLoop:
        _, limiter = shared_async_http()
        for _ in range(MAX_IN_FLIGHT):
            await limiter.acquire()
        waiter = asyncio.ensure_future(limiter.acquire())  # waiting binds it to the loop
        await asyncio.sleep(0)
        limiter.release()
        await waiter
        return asyncio.get_running_loop()

    first = asyncio.run(contend())
    assert first in _shared  # the semaphore keeps the dead loop's entry alive...
    asyncio.run(contend())
    assert first not in _shared  # ...until the next lookup drops closed loops
