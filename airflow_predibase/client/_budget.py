"""Request budgets: every client of one connection in one process shares a request rate.

A tenant's rate limit is shared by all its callers, so 10,000 deferred waits polling every
20 s (500 requests/s) against a 100 requests/s limit would be a storm of 429s. Instead each
(scheme + host, token) pair has one `RequestBudget` per process, whatever the number of
clients, hooks, threads or event loops using it.

The budget is a virtual schedule (GCRA): `reserve()` takes the next free slot under a lock
and returns how long to wait for it; the caller sleeps (`asyncio.sleep` or `time.sleep`)
and then sends. Slots are handed out in the order they are asked for, so when demand
exceeds the rate every wait is slowed alike and none is starved. A 429 (`throttled()`)
pauses the whole schedule for its `Retry-After`, adopts 90 % of a lower announced
`x-ratelimit-limit`, or else lowers the rate by a fifth, once per 429 storm (the 429s
answering requests sent before the last change do not count again). Slots already handed
out move with it: a caller that slept checks its ticket again (`recheck()`) before sending.

The token never appears in a key's repr or in a log line; only a short hash of it does.
"""

from __future__ import annotations

import hashlib
import logging
import math
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import httpx

log = logging.getLogger("airflow_predibase.client")

#: Requests may go out up to this many seconds' worth of the rate at once (at least one).
BURST_SECONDS = 1.0
#: A 429 without an announced lower limit multiplies the rate by this.
BACKOFF_FACTOR = 0.8
#: An announced `x-ratelimit-limit` lower than the rate is adopted with this margin, which
#: absorbs requests bunched on the way (queues, network) into a bucket that is exactly full.
ADOPT_SHARE = 0.9
#: The rate never drops below this many requests per second.
MIN_RATE = 0.05
#: A `Retry-After` longer than this pauses the budget for this long only.
MAX_PAUSE = 60.0
#: Requests waiting longer than this for their slot mean the budget is spent.
SATURATED_AFTER = 1.0
#: How far back the demand named in that log line is measured, in seconds.
DEMAND_WINDOW = 5.0

_LEADING_NUMBER = re.compile(r"\s*([0-9]+(?:\.[0-9]+)?)")
_WINDOW = re.compile(r";\s*w=([0-9]+(?:\.[0-9]+)?)")


@dataclass(frozen=True)
class BudgetKey:
    """Where requests go (`scheme://host[:port]`) and whose token they carry (hashed)."""

    origin: str
    token_hash: str = field(repr=False)

    @classmethod
    def of(cls, origin: str, token: str) -> BudgetKey:
        return cls(origin, token_fingerprint(token))

    def __str__(self) -> str:
        return f"{self.origin} (token #{self.token_hash[:8]})"


def token_fingerprint(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Ticket:
    """One reserved slot: when (the budget's clock), how long to wait for it from the moment
    it was issued, and the budget's generation (rate and pauses) it was scheduled under."""

    budget: RequestBudget = field(repr=False)
    at: float
    delay: float
    generation: int

    @property
    def current(self) -> bool:
        """No 429 has changed the schedule since this slot was (re)checked."""
        return self.generation == self.budget.generation


@dataclass(frozen=True)
class _Shift:
    """A 429 at `when`: later slots start after `resume`, spread `stretch` times wider."""

    when: float
    resume: float
    stretch: float

    def move(self, at: float) -> float:
        return self.resume + max(0.0, at - self.when) * self.stretch


def announced_limit(value: str | None) -> float | None:
    """Requests per second from `x-ratelimit-limit`: `100` (taken as per second, as API_NOTES
    gives the limits), or the IETF draft's `100, 100;w=60` (100 per 60 s); None if unusable."""
    match = _LEADING_NUMBER.match(value or "")
    if match is None:
        return None
    limit = float(match.group(1))
    window = _WINDOW.search(value or "")
    seconds = float(window.group(1)) if window else 1.0
    return limit / seconds if limit > 0 and seconds > 0 else None


def _retry_after_seconds(value: str | None) -> float | None:
    from airflow_predibase.client._retry import parse_retry_after

    return parse_retry_after(value, now=time.time())


class RequestBudget:
    """A thread-safe request rate shared by every client of one key in this process.

    `clock` is monotonic seconds (injectable for tests). `rate` is requests per second.
    """

    def __init__(
        self, key: BudgetKey, rate: float, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if not (math.isfinite(rate) and rate > 0):
            raise ValueError(f"max_requests_per_second must be > 0, got {rate}")
        self.key = key
        self.configured = rate
        self.rate = rate
        self._clock = clock
        self._lock = threading.Lock()
        self._next = -math.inf  # GCRA's theoretical arrival time: the schedule's end
        self._shifts: list[_Shift] = []  # one per generation after the first
        self._resume = -math.inf  # the end of the last pause
        self._first: float | None = None
        self._recent: deque[float] = deque()  # reservation times, until the log line
        self.saturation_logged = False
        #: What happened, for tests and benchmarks: reservations, 429s fed back, rate changes.
        self.reservations = 0
        self.throttles = 0

    def __repr__(self) -> str:
        return f"RequestBudget({self.key}, {self.rate:g} req/s)"

    @property
    def generation(self) -> int:
        return len(self._shifts)

    @property
    def burst(self) -> float:
        return max(1.0, math.floor(self.rate * BURST_SECONDS))

    def reserve(self) -> Ticket:
        """Take the next free slot; sleep `Ticket.delay` seconds, then `recheck` it."""
        with self._lock:
            now = self._clock()
            if self._first is None:
                self._first = now
            if not self.saturation_logged:
                self._recent.append(now)
                while self._recent[0] < now - DEMAND_WINDOW:
                    self._recent.popleft()
            interval = 1.0 / self.rate
            # A slot may come up to a burst's worth of intervals before the schedule.
            at = max(now, self._next - (self.burst - 1) * interval)
            self._next = max(self._next, at) + interval
            self.reservations += 1
            ticket = Ticket(self, at, at - now, self.generation)
            queued = at - max(now, self._resume)  # a pause is not a lack of budget
            if queued > SATURATED_AFTER and not self.saturation_logged:
                self.saturation_logged = True
                self._log_saturation(now, queued)
                self._recent.clear()
            return ticket

    def recheck(self, ticket: Ticket) -> Ticket:
        """The ticket after the 429s since it was issued: paused and spread like the rest of
        the schedule, so queued requests keep their order. `delay` is what is left to wait."""
        with self._lock:
            at = ticket.at
            for shift in self._shifts[ticket.generation :]:
                at = shift.move(at)
            return Ticket(self, at, at - self._clock(), self.generation)

    def _log_saturation(self, now: float, delay: float) -> None:
        assert self._first is not None
        elapsed = max(min(now - self._first, DEMAND_WINDOW), 1.0 / self.rate)
        demand = len(self._recent) / elapsed
        log.warning(
            "Predibase request budget for %s is spent: requests are asked for at about "
            "%.0f/s against a budget of %g/s, so every wait's polling interval stretches "
            "by roughly %.1fx (each wait alike; requests now queue %.1f s for their turn). "
            "Raise the connection extra max_requests_per_second if the tenant's limit allows.",
            self.key,
            demand,
            self.rate,
            max(1.0, demand / self.rate),
            delay,
        )

    def throttled(self, headers: Mapping[str, str], ticket: Ticket | None) -> None:
        """Feed back a 429: pause every request for its `Retry-After`, and lower the rate.

        A 429 answering a request scheduled before the last change changes nothing more: the
        requests in flight when a limit is first hit all come back 429 together.
        """
        pause = _retry_after_seconds(headers.get("retry-after"))
        limit = announced_limit(headers.get("x-ratelimit-limit"))
        with self._lock:
            self.throttles += 1
            if ticket is not None and ticket.generation != self.generation:
                return
            now = self._clock()
            before = self.rate
            if limit is not None and limit * ADOPT_SHARE < self.rate:
                self.rate = max(MIN_RATE, limit * ADOPT_SHARE)
            else:
                self.rate = max(MIN_RATE, self.rate * BACKOFF_FACTOR)
            waited = 0.0 if pause is None else min(pause, MAX_PAUSE)
            shift = _Shift(now, now + waited, before / self.rate)
            # Queued slots move with the schedule; no burst on resuming (the server's
            # bucket is empty after a 429).
            self._next = max(shift.move(self._next), shift.resume) + (self.burst - 1) / self.rate
            self._shifts.append(shift)
            self._resume = shift.resume
        announced = "" if limit is None else f"; the server announces a limit of {limit:g}/s"
        log.warning(
            "Predibase answered 429 (too many requests) for %s: pausing every request on it "
            "for %.1f s and lowering its request budget from %g/s to %g/s%s.",
            self.key,
            waited,
            before,
            self.rate,
            announced,
        )


class BudgetRegistry:
    """The budgets of one process, by key. The lowest rate any client asks for wins."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._budgets: dict[BudgetKey, RequestBudget] = {}

    def get(self, key: BudgetKey, rate: float) -> RequestBudget:
        with self._lock:
            budget = self._budgets.get(key)
            if budget is None:
                budget = self._budgets[key] = RequestBudget(key, rate, clock=self._clock)
            elif rate < budget.configured:
                budget.configured = rate
                budget.rate = min(budget.rate, rate)
            return budget

    def clear(self) -> None:
        """Forget every budget (tests: each one starts with fresh budgets)."""
        with self._lock:
            self._budgets.clear()

    def __len__(self) -> int:
        return len(self._budgets)


#: This process's budgets.
BUDGETS = BudgetRegistry()


def origin_of(url: object) -> str:
    """`scheme://host[:port]` of an httpx URL (or anything with those attributes)."""
    scheme = getattr(url, "scheme", "")
    host = getattr(url, "host", "")
    port = getattr(url, "port", None)
    return f"{scheme}://{host}" + (f":{port}" if port else "")


class ClientBudgets:
    """Which budget each request of one client draws on. Requests without the token
    (presigned upload and result URLs) draw on none; `rate` None switches budgets off."""

    def __init__(self, token: str, rate: float | None, registry: BudgetRegistry | None) -> None:
        self._rate = rate
        self._fingerprint = token_fingerprint(token)
        self._registry = BUDGETS if registry is None else registry
        self._by_origin: dict[str, RequestBudget] = {}

    def budget_for(self, request: httpx.Request) -> RequestBudget | None:
        if self._rate is None or "authorization" not in request.headers:
            return None
        origin = origin_of(request.url)
        budget = self._by_origin.get(origin)
        if budget is None:
            key = BudgetKey(origin, self._fingerprint)
            budget = self._by_origin[origin] = self._registry.get(key, self._rate)
        return budget

    def reserve(self, request: httpx.Request) -> Ticket | None:
        """A slot for `request`, or None when it has no budget. Sleep `delay`, then ask
        `ticket.budget.recheck(ticket)` until no delay is left."""
        budget = self.budget_for(request)
        return None if budget is None else budget.reserve()

    @staticmethod
    def answered(response: httpx.Response, ticket: Ticket | None) -> None:
        if ticket is not None and response.status_code == 429:
            ticket.budget.throttled(response.headers, ticket)
