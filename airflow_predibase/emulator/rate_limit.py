"""A per-tenant request rate limit, as production's gateway enforces one (API_NOTES: 1/s on
the free tier, 100/s on paid tiers), so clients' request budgets can be tested for real.

Each token (a tenant) has a token bucket holding at most `requests_per_second` requests,
refilled at that rate: a full second's worth may come at once, and no more than the rate
on average. Past it comes a 429 in the plane's error shape, with `Retry-After` (whole
seconds until a request would pass), `x-ratelimit-limit`, `x-ratelimit-remaining` and
`x-ratelimit-reset` (whole seconds until the bucket is full again). Production's exact
algorithm and the format of its reset header are not known; this is one plausible reading.

The control API (`/__emulator__`), the console and the token-free upload and download
URLs are never limited. Every 429 sent is counted, so a benchmark can read how many there
were (`GET /__emulator__/rate-limit`).
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

from airflow_predibase.emulator.auth import is_console_path
from airflow_predibase.emulator.errors import error_body, is_serving_path
from airflow_predibase.emulator.faults import ADMIN_PREFIX


class _Bucket:
    __slots__ = ("at", "level")

    def __init__(self, level: float, at: float) -> None:
        self.level = level
        self.at = at


class RateLimiter:
    """Token buckets by bearer token; `requests_per_second` None means no limit."""

    def __init__(self, requests_per_second: float | None, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._buckets: dict[bytes, _Bucket] = {}
        self.requests_per_second = requests_per_second
        self.allowed = 0
        self.limited = 0

    def configure(self, requests_per_second: float | None) -> None:
        """A new limit (None: none); buckets start full again and the counts from zero."""
        with self._lock:
            self.requests_per_second = requests_per_second
            self._buckets.clear()
            self.allowed = self.limited = 0

    def describe(self) -> dict[str, Any]:
        return {
            "requests_per_second": self.requests_per_second,
            "allowed": self.allowed,
            "limited": self.limited,
        }

    def take(self, tenant: bytes) -> dict[str, str] | None:
        """None if a request of `tenant` may pass now; else the 429's headers."""
        rate = self.requests_per_second
        if rate is None:
            return None
        capacity = max(1.0, rate)
        with self._lock:
            now = self._clock()
            bucket = self._buckets.get(tenant)
            if bucket is None:
                bucket = self._buckets[tenant] = _Bucket(capacity, now)
            bucket.level = min(capacity, bucket.level + (now - bucket.at) * rate)
            bucket.at = now
            if bucket.level >= 1.0:
                bucket.level -= 1.0
                self.allowed += 1
                return None
            self.limited += 1
            return {
                "retry-after": str(max(1, math.ceil((1.0 - bucket.level) / rate))),
                "x-ratelimit-limit": f"{rate:g}",
                "x-ratelimit-remaining": "0",
                "x-ratelimit-reset": str(max(1, math.ceil((capacity - bucket.level) / rate))),
            }


class RateLimitMiddleware:
    """Answers 429 for a tenant past its rate; inside the token check, so only real calls
    count."""

    def __init__(self, app: ASGIApp, limiter: RateLimiter) -> None:
        self.app = app
        self.limiter = limiter

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if (
            scope["type"] != "http"
            or self.limiter.requests_per_second is None
            or path.startswith(ADMIN_PREFIX)
            or is_console_path(path)
        ):
            await self.app(scope, receive, send)
            return
        tenant = next((v for k, v in scope["headers"] if k == b"authorization"), None)
        headers = None if tenant is None else self.limiter.take(tenant)
        if headers is None:
            await self.app(scope, receive, send)
            return
        body = error_body(
            429,
            f"rate limit exceeded: {headers['x-ratelimit-limit']} requests per second for "
            "this tenant",
            serving=is_serving_path(path),
        )
        raw = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
        raw += [(name.encode(), value.encode()) for name, value in headers.items()]
        await send({"type": "http.response.start", "status": 429, "headers": raw})
        await send({"type": "http.response.body", "body": body})
