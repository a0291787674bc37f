"""What a wait does after each poll: written once, used by the blocking loop and triggers.

No I/O here. The caller fetches the resource (sync or async), hands the result or the
error to `Waiter`, and gets back either an event (the wait is over) or how many seconds to
sleep before the next poll.
"""

from __future__ import annotations

import logging
import math
import random
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from airflow_predibase.client.errors import (
    APIConnectionError,
    PredibaseError,
    RateLimitError,
    ResponseValidationError,
    ServerError,
)
from airflow_predibase.kinds import ResourceKind
from airflow_predibase.waiting.events import JobEvent

#: One generator for every wait in the process: a Random per wait costs ~2.5 KB, which
#: matters at 10,000 waits in one triggerer.
_RNG = random.Random()

#: Wait lines without an operator's or trigger's logger at hand. Airflow routes it into the
#: task's log on a worker and into the trigger's log in the triggerer.
log = logging.getLogger("airflow_predibase.waiting")

#: How long a status this version does not know may last before the wait gives up (seconds).
DEFAULT_MAX_UNKNOWN_STATUS = 3600.0


@dataclass(frozen=True)
class PollPolicy:
    """How often to poll. Plain numbers, so it crosses the trigger boundary as kwargs.

    `first_poll_delay` keeps a trigger from firing in its first second, which Airflow 3.3.2's
    scheduler can mishandle (apache/airflow #67287); it also spreads thousands of waits
    started together.

    `max_unknown_status` bounds how long the resource may report a status this version
    does not know (a platform upgrade): such a status counts as not finished, so without a
    bound a new *final* status would keep the wait going until its deadline, or for ever.
    None removes the bound.
    """

    interval: float = 30.0
    jitter: float = 0.2
    first_poll_delay: float = 1.0
    max_consecutive_errors: int = 10
    max_error_backoff: float = 300.0
    max_unknown_status: float | None = DEFAULT_MAX_UNKNOWN_STATUS

    def __post_init__(self) -> None:
        if not (math.isfinite(self.interval) and self.interval > 0):
            raise ValueError(f"poll_interval must be > 0 seconds, got {self.interval}")
        if self.max_unknown_status is not None and not (
            math.isfinite(self.max_unknown_status) and self.max_unknown_status > 0
        ):
            raise ValueError(
                f"max_unknown_status must be > 0 seconds or None, got {self.max_unknown_status}"
            )
        if not 0 <= self.jitter < 1:
            raise ValueError(f"jitter must be in [0, 1), got {self.jitter}")
        if self.max_consecutive_errors < 1:
            raise ValueError(
                f"max_consecutive_errors must be >= 1, got {self.max_consecutive_errors}"
            )


def _reason(resource: Any) -> str | None:
    for attr in ("error", "last_error"):
        value = getattr(resource, attr, None)
        if value:
            return str(value)
    return None


def describe_progress(resource: Any) -> str:
    """One line: status, and training progress where the resource has it."""
    text = f"status={resource.status}"
    progress = getattr(resource, "progress", None)
    if progress is not None and progress.step is not None:
        text += f" step={progress.step}/{progress.total_steps}"
        if progress.epoch is not None:
            text += f" epoch={progress.epoch:g}"
        if progress.train_loss is not None:
            text += f" loss={progress.train_loss:.4f}"
    return text


def is_about(resource: Any, resource_id: str) -> bool:
    """Whether `resource` is the one called `resource_id` (a job ID, or a deployment or
    dataset name): a server may answer about another one."""
    return resource_id in (getattr(resource, "id", None), getattr(resource, "name", None))


def is_transient(error: BaseException) -> bool:
    """Errors worth polling through: the server or network will likely recover.

    A garbled answer (a truncated or HTML body under a 200, an answer about another
    resource) says nothing about the resource, so it counts too: the wait must not end,
    leaving the job running, on one bad answer.
    """
    return isinstance(
        error, APIConnectionError | RateLimitError | ServerError | ResponseValidationError
    )


class Waiter:
    """The state of one wait. Feed it each poll's outcome; it says what to do next.

    `logger` (anything with ``.warning``: a trigger's or an operator's ``log``) receives the
    one warning about a status this version does not know; by default this module's.
    `keep_resource=False` keeps only the last status, not the last resource (~5 KB), and
    the events then carry no `resource`: a trigger's events never do, and a triggerer may
    hold 10,000 waits.
    """

    # Slots: thousands of waits live in one triggerer.
    __slots__ = (
        "_keep_resource",
        "_last_resource",
        "_last_status",
        "_log",
        "_rng",
        "_unknown_since",
        "_warned",
        "consecutive_errors",
        "deadline",
        "kind",
        "last_seen",
        "policy",
        "resource_id",
    )

    def __init__(
        self,
        kind: ResourceKind,
        resource_id: str,
        policy: PollPolicy,
        deadline: float | None,
        *,
        rng: random.Random | None = None,
        logger: Any = None,
        keep_resource: bool = True,
    ) -> None:
        self.kind = kind
        self.resource_id = resource_id
        self.policy = policy
        self.deadline = deadline
        self.consecutive_errors = 0
        self.last_seen: str | None = None
        self._keep_resource = keep_resource
        self._last_resource: BaseModel | None = None
        self._last_status: Any = None
        self._rng = rng or _RNG
        self._log = logger or log
        #: When the resource began reporting a status this version does not know.
        self._unknown_since: float | None = None
        self._warned: set[str] | None = None  # created on the first unknown status

    def _jittered(self, seconds: float) -> float:
        spread = seconds * self.policy.jitter
        return max(0.0, seconds + self._rng.uniform(-spread, spread))

    def _sleep_or_timeout(self, seconds: float, now: float) -> JobEvent | float:
        if self.deadline is None:
            return seconds
        if now >= self.deadline:
            return self.timeout_event()
        return min(seconds, self.deadline - now)

    def first_delay(self, now: float) -> JobEvent | float:
        """Before the first poll: at least `first_poll_delay`, plus (with jitter) a random
        share of one interval, so that waits revived together (a triggerer restart brings
        back thousands) do not all poll in the same second."""
        extra = self._rng.uniform(0, self.policy.interval) if self.policy.jitter else 0.0
        return self._sleep_or_timeout(self.policy.first_poll_delay + extra, now)

    def on_resource(self, resource: BaseModel, now: float) -> JobEvent | float:
        """After a successful poll."""
        self.consecutive_errors = 0
        status = self._last_status = resource.status  # type: ignore[attr-defined]
        if self._keep_resource:
            self._last_resource = resource
        if status.is_terminal:
            return self._terminal_event(resource)
        delay = self._jittered(self.policy.interval)
        if status.is_known:
            self._unknown_since = None
        else:
            left = self._unknown_left(status, now)
            if isinstance(left, JobEvent):
                return left
            if left is not None:
                delay = min(delay, left)
        return self._sleep_or_timeout(delay, now)

    def _unknown_left(self, status: Any, now: float) -> JobEvent | float | None:
        """A status this version does not know: warn once per value, and end the wait once
        it has lasted `max_unknown_status`; else the seconds left (None: no bound)."""
        bound = self.policy.max_unknown_status
        if self._unknown_since is None:
            self._unknown_since = now
        if self._warned is None:
            self._warned = set()
        if str(status) not in self._warned:
            self._warned.add(str(status))
            limit = "without a bound" if bound is None else f"for at most {bound:g} s"
            self._log.warning(
                "%s reports status %r, which this version of airflow-provider-predibase does "
                "not know; it counts as not finished, and the wait goes on %s "
                "(docs/reliability.md#unknown-statuses)",
                self._name(),
                str(status),
                limit,
            )
        if bound is None:
            return None
        lasted = now - self._unknown_since
        if lasted >= bound:
            return self._event(
                "failed",
                f"{self._name()} has reported status {str(status)!r}, which this version of "
                f"airflow-provider-predibase does not know, for {round(lasted, 1):g} s (the "
                f"bound is {bound:g} s): giving up the wait. The remote work was left as it "
                "is: check it in the console, and upgrade the provider if the platform added "
                "a status",
            )
        return bound - lasted

    def check_identity(self, resource: BaseModel) -> BaseModel:
        """`resource`, if it is the one waited on (by job ID, or deployment or dataset name);
        else ResponseValidationError, a transient poll error: never a success."""
        if is_about(resource, self.resource_id):
            return resource
        other = getattr(resource, "id", None) or getattr(resource, "name", None)
        raise ResponseValidationError(
            f"asked for {self._name()}, the answer is about {other!r}: ignoring it"
        )

    def on_error(self, error: PredibaseError, now: float) -> JobEvent | float:
        """After a failed poll: transient errors back off, others end the wait."""
        if not is_transient(error):
            return self._event("failed", f"polling {self._name()} failed: {error}")
        self.consecutive_errors += 1
        if self.consecutive_errors >= self.policy.max_consecutive_errors:
            return self._event(
                "failed",
                f"polling {self._name()} failed {self.consecutive_errors} times in a row; "
                f"last error: {error}",
            )
        backoff = self.policy.interval * 2 ** (self.consecutive_errors - 1)
        delay = self._jittered(min(backoff, self.policy.max_error_backoff))
        if isinstance(error, RateLimitError) and error.retry_after is not None:
            delay = max(delay, min(error.retry_after, self.policy.max_error_backoff))
        return self._sleep_or_timeout(delay, now)

    def progress_line(self, resource: BaseModel) -> str | None:
        """A log line when anything visible changed since the last poll, else None."""
        line = describe_progress(resource)
        if line == self.last_seen:
            return None
        self.last_seen = line
        return f"{self._name()}: {line}"

    def timeout_event(self) -> JobEvent:
        status = "unknown" if self._last_status is None else self._last_status
        return self._event("timeout", f"timed out waiting for {self._name()}; last status {status}")

    def _name(self) -> str:
        return f"{self.kind.label} {self.resource_id}"

    def _terminal_event(self, resource: BaseModel) -> JobEvent:
        status = resource.status  # type: ignore[attr-defined]
        if status.is_success:
            return self._event("success", f"{self._name()} is {status}")
        outcome = "cancelled" if status.is_cancelled else "failed"
        reason = _reason(resource)
        detail = f": {reason}" if reason else ""
        return self._event(outcome, f"{self._name()} ended {status}{detail}")

    def _event(self, status: str, message: str) -> JobEvent:
        resource = self._last_resource
        last = self._last_status
        return JobEvent(
            status=status,  # type: ignore[arg-type]
            kind=self.kind.name,
            resource_id=self.resource_id,
            remote_status=None if last is None else str(last),
            message=message,
            resource=resource.model_dump(mode="json", by_alias=True) if resource else None,
        )
