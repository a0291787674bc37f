"""What `trigger_capacity.py` measures inside a scenario's process: polls per wait and the
time between them, what the HTTP layer saw, full garbage collections, loop lag, memory.

Counters patch classes from the outside (measurement only): the trigger code is unchanged.
"""

from __future__ import annotations

import asyncio
import time
from array import array
from typing import Any


def status_kb(field: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/self/status")


def rss_kb() -> int:
    return status_kb("VmRSS")


def percentile(values: Any, share: float) -> float | None:
    ordered = sorted(values)
    if not ordered:
        return None
    return float(ordered[min(len(ordered) - 1, int(share * len(ordered)))])


class Stats:
    """Polls per wait, the moments every wait reached 1 and N polls, and each wait's time
    between consecutive polls (8 bytes a poll: the record must not weigh on KB/wait)."""

    def __init__(self, k: int, polls: int) -> None:
        self.k, self.polls = k, polls
        self.total = self.failed = self.ended = 0
        self.reached_one = self.reached_n = 0
        self.all_once = asyncio.Event()
        self.all_n = asyncio.Event()
        self.intervals = array("d")
        self._count: dict[int, int] = {}
        self._last: dict[int, float] = {}

    def polled(self, holder: object) -> None:
        key, now = id(holder), time.monotonic()
        count = self._count.get(key, 0) + 1
        self._count[key] = count
        last = self._last.get(key)
        if last is not None:
            self.intervals.append(now - last)
        self._last[key] = now
        self.total += 1
        if count == 1:
            self.reached_one += 1
            if self.reached_one == self.k:
                self.all_once.set()
        if count == self.polls:
            self.reached_n += 1
            if self.reached_n == self.k:
                self.all_n.set()


STATS: list[Stats] = []  # the current scenario's, once it runs


def current() -> Stats | None:
    return STATS[-1] if STATS else None


class Transport:
    """Counts what `httpx.AsyncClient.send` sees: requests, HTTP errors, exceptions. The
    shared pool's own `send` only picks a shard, whose `send` (this one) counts."""

    requests = http_errors = exceptions = 0

    @classmethod
    def install(cls) -> None:
        import httpx

        send = httpx.AsyncClient.send

        async def counted(self: Any, request: Any, **kwargs: Any) -> Any:
            cls.requests += 1
            try:
                response = await send(self, request, **kwargs)
            except Exception:
                cls.exceptions += 1
                raise
            if response.status_code >= 400:
                cls.http_errors += 1
            return response

        httpx.AsyncClient.send = counted  # type: ignore[method-assign]

    @classmethod
    def reset(cls) -> None:
        cls.requests = cls.http_errors = cls.exceptions = 0


class FullCollections:
    """CPU spent in full (generation 2) garbage collections: they stop the whole loop."""

    count = 0
    seconds = longest = 0.0
    _started = 0.0

    @classmethod
    def install(cls) -> None:
        import gc

        def track(phase: str, info: dict[str, int]) -> None:
            if info["generation"] != 2:
                return
            if phase == "start":
                cls._started = time.process_time()
                return
            spent = time.process_time() - cls._started
            cls.count += 1
            cls.seconds += spent
            cls.longest = max(cls.longest, spent)

        gc.callbacks.append(track)

    @classmethod
    def reset(cls) -> None:
        cls.count, cls.seconds, cls.longest = 0, 0.0, 0.0


def install_waiter_counters() -> None:
    """Count polls by wrapping `Waiter.on_resource` and failures by `Waiter.on_error`."""
    from airflow_predibase.waiting.waiter import Waiter

    on_resource, on_error = Waiter.on_resource, Waiter.on_error

    def counted_resource(self: Waiter, resource: Any, now: float) -> Any:
        stats = current()
        if stats is not None:
            stats.polled(self)
        return on_resource(self, resource, now)

    def counted_error(self: Waiter, error: Any, now: float) -> Any:
        stats = current()
        if stats is not None:
            stats.failed += 1
        return on_error(self, error, now)

    Waiter.on_resource = counted_resource  # type: ignore[method-assign]
    Waiter.on_error = counted_error  # type: ignore[method-assign]


async def loop_lag(tick: float, worst: list[float]) -> None:
    """The longest the loop was blocked beyond `tick` into worst[0], and when (seconds
    since the start) into worst[1]; blocks over 0.2 s (the triggerer warns) in worst[2]."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    while True:
        before = loop.time()
        await asyncio.sleep(tick)
        lag = loop.time() - before - tick
        if lag > 0.2:
            worst[2] += 1
        if lag > worst[0]:
            worst[0], worst[1] = lag, before - started
