"""One retry policy, as plain numbers, shared by the sync and async clients.

What is retried (`retryable`):

| outcome                                           | idempotent | create POST |
| ------------------------------------------------- | ---------- | ----------- |
| nothing sent: connect error/timeout, pool timeout | retry      | retry       |
| 429                                               | retry      | retry       |
| read/write timeout, connection dropped mid-answer | retry      | no: unknown |
| 500, 502, 503, 504                                | retry      | no: unknown |
| any other status                                  | no         | no          |

"Idempotent" is GET, PUT, DELETE, cancel POSTs and POSTs that create nothing (serving
calls, the upload-URL request). How long to wait (`decide`): the server's `Retry-After`
(seconds or an HTTP date, clamped to `retry_after_cap`), else exponential backoff with
jitter. No attempt starts after `max_attempts` or once `total_timeout` would be passed.

The policy is numbers (not tenacity objects) so it can cross the trigger boundary as
kwargs: `RetryPolicy.from_dict(policy.to_dict())`.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
import tenacity

log = logging.getLogger("airflow_predibase.client")

#: A 500 is retried too: on a read it is most often a hiccup of one backend (the serving
#: plane's `incomplete_generation` is one), and repeating a GET cannot do harm.
RETRY_STATUSES = frozenset({500, 502, 503, 504})

# These fail before a single byte of the request reached the server, so even a create POST
# can be sent again without risking a duplicate.
_NOTHING_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
# These may hit after the server got the request: safe to repeat only when idempotent.
_MAYBE_SENT = (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError)


@dataclass(frozen=True)
class RetryPolicy:
    """How hard the client tries. All durations are in seconds."""

    max_attempts: int = 5
    initial_backoff: float = 0.5
    max_backoff: float = 8.0
    jitter: float = 0.5
    """Fraction of each backoff that is randomised away: the wait is in [b*(1-jitter), b]."""
    retry_after_cap: float = 60.0
    total_timeout: float = 120.0
    """No new attempt starts once this much time would have passed since the first."""

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts must be >= 1, got {self.max_attempts}")
        if not 0 <= self.jitter <= 1:
            raise ValueError(f"jitter must be within [0, 1], got {self.jitter}")
        for name in ("initial_backoff", "max_backoff", "retry_after_cap", "total_timeout"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")

    def to_dict(self) -> dict[str, float]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RetryPolicy:
        return cls(**data)


def nothing_sent(error: BaseException) -> bool:
    """True when the request cannot have reached the server."""
    return isinstance(error, _NOTHING_SENT)


def retryable(*, idempotent: bool, status: int | None, error: BaseException | None) -> bool:
    """Whether this outcome may be retried at all (see the table in the module docstring)."""
    if error is not None:
        return nothing_sent(error) or (idempotent and isinstance(error, _MAYBE_SENT))
    return status == 429 or (idempotent and status in RETRY_STATUSES)


def parse_retry_after(value: str | None, *, now: float) -> float | None:
    """Seconds to wait from a Retry-After value (delta-seconds or HTTP date); None if unusable.

    A date in the past means "now" (0). `now` is wall-clock epoch seconds.
    """
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:  # RFC 9110 dates are GMT; naive parses come from "-0000"
            return None
        return max(0.0, when.timestamp() - now)
    if seconds != seconds or seconds < 0 or seconds == float("inf"):  # NaN, negative, inf
        return None
    return seconds


def decide(
    policy: RetryPolicy,
    *,
    attempt: int,
    elapsed: float,
    idempotent: bool,
    status: int | None = None,
    error: BaseException | None = None,
    retry_after: str | None = None,
    now: float,
    rand: float,
) -> float | None:
    """Seconds to wait before attempt `attempt + 1`, or None to stop and report this outcome.

    Pure: the wall clock (`now`, for HTTP dates) and the random draw (`rand` in [0, 1)) are
    arguments. `attempt` counts from 1; `elapsed` is the time since attempt 1 started.
    """
    if not retryable(idempotent=idempotent, status=status, error=error):
        return None
    if attempt >= policy.max_attempts:
        return None
    hinted = parse_retry_after(retry_after, now=now)
    if hinted is not None:
        wait = min(hinted, policy.retry_after_cap)
    else:
        backoff = min(policy.max_backoff, policy.initial_backoff * 2 ** (attempt - 1))
        wait = backoff * (1 - policy.jitter * rand)
    if elapsed + wait > policy.total_timeout:
        return None
    return wait


def tenacity_kwargs(
    policy: RetryPolicy,
    *,
    idempotent: bool,
    what: str,
    clock: Callable[[], float],
    final: frozenset[int] = frozenset(),
    rng: Callable[[], float] = random.random,
) -> dict[str, Any]:
    """Keyword arguments for `tenacity.Retrying` / `AsyncRetrying` around one request.

    The attempted function returns an `httpx.Response` (any status) or raises an httpx
    transport error; `decide` judges both. Callers add `sleep=` (injectable so tests never
    really sleep). `what` ("GET /path") only feeds the log line. Statuses in `final` are
    answers the operation wants (e.g. a 503 health check), never retried.
    """
    started = clock()
    waits: dict[int, float] = {}

    def should_retry(state: tenacity.RetryCallState) -> bool:
        outcome = state.outcome
        assert outcome is not None  # tenacity sets it before asking
        error = outcome.exception()
        response: httpx.Response | None = None if error is not None else outcome.result()
        if response is not None and response.status_code in final:
            return False
        wait = decide(
            policy,
            attempt=state.attempt_number,
            elapsed=clock() - started,
            idempotent=idempotent,
            status=None if response is None else response.status_code,
            error=error,
            retry_after=None if response is None else response.headers.get("retry-after"),
            now=time.time(),
            rand=rng(),
        )
        if wait is None:
            return False
        waits[state.attempt_number] = wait
        reason = type(error).__name__ if response is None else f"HTTP {response.status_code}"
        log.warning(
            "%s failed (%s); retrying in %.2fs (attempt %d of %d)",
            what,
            reason,
            wait,
            state.attempt_number + 1,
            policy.max_attempts,
        )
        return True

    return {
        "retry": should_retry,
        "wait": lambda state: waits[state.attempt_number],
        "stop": tenacity.stop_never,  # decide() bounds attempts and total time
        "reraise": True,
    }
