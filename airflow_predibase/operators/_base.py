"""What every Predibase operator shares: the connection, waiting, timeouts and kill.

Waiting is the same in both modes. Blocking mode polls on the worker; deferred mode hands
the same `Waiter` rules to a trigger. Either way the wait ends in one `JobEvent`, and one
method, `_raise_for_event`, turns it into success or a clear failure.
"""

from __future__ import annotations

import functools
import json
import math
import time
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from airflow.providers.common.compat.sdk import BaseOperator

from airflow_predibase.client.errors import (
    AuthenticationError,
    BadRequestError,
    NotFoundError,
    PermissionDeniedError,
    PredibaseError,
)
from airflow_predibase.deferral import PredibaseWaitMixin, default_deferrable
from airflow_predibase.exceptions import (
    PredibaseJobCancelled,
    PredibaseJobFailed,
    PredibaseJobTimeout,
    PredibaseRequestRejected,
)
from airflow_predibase.kinds import ResourceKind
from airflow_predibase.links import PredibaseConsoleLink
from airflow_predibase.waiting.blocking import wait_blocking
from airflow_predibase.waiting.events import JobEvent
from airflow_predibase.waiting.waiter import PollPolicy, Waiter

if TYPE_CHECKING:
    from airflow_predibase.client import PredibaseClient


def _seconds(value: timedelta | float | int | str | None, field: str) -> float | None:
    """Seconds from a number, a numeric string or a timedelta; None for None or "".

    Anything that is not a finite positive number fails when the DAG is parsed: an infinite
    `timeout` would only crash later, as a trigger deadline JSON cannot carry, after the job
    was created (docs/reliability.md#clear-errors).
    """
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise ValueError(f"{field} must be seconds or a timedelta, got {value!r}")
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
    else:
        try:
            seconds = float(value)
        except (TypeError, ValueError):
            raise ValueError(f"{field} must be seconds or a timedelta, got {value!r}") from None
    if not math.isfinite(seconds):
        raise ValueError(f"{field} must be a finite number of seconds, got {value!r}")
    if seconds <= 0:
        raise ValueError(f"{field} must be positive, got {value!r}")
    return seconds


#: How long each kind's wait may take when the DAG sets no `timeout`, in seconds: a bound on
#: every wait, generous enough for real work (docs/reliability.md#timeouts).
DEFAULT_TIMEOUTS: dict[str, float] = {
    # Bounds so that no wait is endless, not platform figures (none are published): set
    # `timeout=` to what your jobs need, or `timeout=None` to wait for ever.
    "dataset": 3600.0,
    "deployment": 3600.0,
    "finetuning_job": 24 * 3600.0,
    "batch_inference_job": 24 * 3600.0,
}


class _Default:
    """The `timeout` a DAG did not set: the kind's entry in DEFAULT_TIMEOUTS."""

    def __repr__(self) -> str:
        return "DEFAULT_TIMEOUT"


DEFAULT_TIMEOUT: Any = _Default()


F = TypeVar("F", bound=Callable[..., Any])

#: Default seconds a job operator keeps looking for a job whose create answer was lost,
#: before it sends the create again (`lost_create_window`; docs/idempotency.md).
LOST_CREATE_WINDOW = 120.0


def lost_create_window_seconds(value: timedelta | float | int | str) -> float:
    window = _seconds(value, "lost_create_window")
    if window is None:
        raise ValueError("lost_create_window must be seconds or a timedelta, got None")
    return window


def fail_fast_on_rejection(method: F) -> F:
    """Decorate `execute`: a request Predibase rejects for good fails the task without
    retries, with the server's reason: a bad request (400/422), a bad token or no permission
    (401/403, naming the connection), or a create that names something missing (a 404 on a
    POST: an unknown dataset, repository or adapter version). A 404 on a GET is left to the
    operator: there it often means "not created yet"."""

    @functools.wraps(method)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        except (BadRequestError, AuthenticationError, PermissionDeniedError) as error:
            raise PredibaseRequestRejected(_rejection(self, error)) from error
        except NotFoundError as error:
            if error.method != "POST":
                raise
            raise PredibaseRequestRejected(_rejection(self, error)) from error

    return wrapper  # type: ignore[return-value]


def _rejection(operator: Any, error: PredibaseError) -> str:
    """The task, the server's reason, and what to fix."""
    text = f"{operator.task_id}: {error}"
    conn_id = getattr(operator, "predibase_conn_id", None)
    if isinstance(error, AuthenticationError):
        text += (
            f". The API token of connection {conn_id!r} is missing, wrong or expired: "
            "put a valid token (pb_...) in its password"
        )
    elif isinstance(error, PermissionDeniedError):
        text += f". The API token of connection {conn_id!r} may not do this"
    elif isinstance(error, NotFoundError):
        text += ". Something the request names does not exist; create it first or fix the name"
    return text


class PredibaseBaseOperator(PredibaseWaitMixin, BaseOperator):
    """Base for the Predibase operators.

    :param predibase_conn_id: Airflow connection of type ``predibase``.
    :param deferrable: wait in the triggerer instead of holding a worker slot. Defaults to
        ``[operators] default_deferrable``.
    :param poll_interval: seconds between status checks (jittered).
    :param timeout: seconds (or a timedelta) this try waits for the remote work before it
        fails with ``PredibaseJobTimeout``; enforced while deferred too. The remote job is
        cancelled when it passes. Defaults to the kind's entry in ``DEFAULT_TIMEOUTS``
        (1 h for datasets and deployments, 24 h for fine-tuning and batch inference jobs).
        ``None`` waits without a deadline (not recommended); an unknown status still ends
        the wait after ``PollPolicy.max_unknown_status``.
    :param cancel_on_kill: cancel the remote job when the task is killed or marked
        failed and will not run again (in blocking mode through ``on_kill``, which leaves
        the job for the next try after a clear or a kill a retry follows; deferred,
        through the trigger's ``on_kill`` on Airflow 3.3+).
    """

    #: What the operator waits on (`airflow_predibase.kinds`).
    kind: ClassVar[ResourceKind]
    operator_extra_links = (PredibaseConsoleLink(),)
    ui_color = "#e8e3ff"

    def __init__(
        self,
        *,
        predibase_conn_id: str = "predibase_default",
        deferrable: bool | None = None,
        poll_interval: float = 30.0,
        timeout: timedelta | float | None = DEFAULT_TIMEOUT,
        cancel_on_kill: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.predibase_conn_id = predibase_conn_id
        self.deferrable = default_deferrable() if deferrable is None else deferrable
        self.poll_interval = _seconds(poll_interval, "poll_interval") or 30.0
        if timeout is DEFAULT_TIMEOUT:
            timeout = DEFAULT_TIMEOUTS[self.kind.name]
        self.timeout = _seconds(timeout, "timeout")
        self.cancel_on_kill = cancel_on_kill
        self._active_id: str | None = None
        self._ti: Any = None

    @property
    def client(self) -> PredibaseClient:
        return self.hook.get_client()

    def _run_job(
        self,
        context: Any,
        *,
        list_jobs: Callable[[], Sequence[Any]],
        get_job: Callable[[str], Any],
        create: Callable[[str], Any],
        request: Any,
        rerun_on_clear: bool,
        lost_create_window: float,
        wait: bool = True,
    ) -> Any:
        """Start this task instance's job for `request` exactly once (see _idempotency),
        publish it, wait (unless not `wait`: then `_on_started` gives the result at once).

        `request` is the request model as it will be sent (its `to_body()` and
        `description`); `create` receives the description with the idempotency marker and
        sends the POST. `list_jobs` must return every page.
        """
        # Loaded when a job is started, not when a DAG file naming the operator is parsed.
        from airflow_predibase.operators._idempotency import (
            JobCalls,
            Ledger,
            identity,
            installation_id,
            resolve_job,
        )
        from airflow_predibase.operators._settings import redacted

        self._ti = context["ti"]
        ledger = Ledger(context)
        # Secrets stay out of the request hash: a rotated token does not start a new job,
        # and nothing derived from a secret is stored in the job's description.
        body = redacted(request.to_body())
        resolution = resolve_job(
            who=identity(context, installation_id(self.log), body),
            ledger=ledger,
            calls=JobCalls(list_jobs=list_jobs, get_job=get_job, create=create),
            description=request.description,
            rerun_on_clear=rerun_on_clear,
            lost_create_window=lost_create_window,
            log=self.log,
        )
        job = resolution.job
        ledger.remember(job.id)
        context["ti"].xcom_push(key="job_id", value=job.id)
        self._publish(context, self.kind, job.id)
        self.log.info("job %s %s (generation %d)", job.id, resolution.action, resolution.generation)
        if not wait:
            return self._on_started(context, job)
        event = self._wait(job, job.id, self._deadline())
        return self._finish(context, event)

    def _on_started(self, context: Any, job: Any) -> Any:
        """`wait_for_completion=False`: the job exists (its ID is in XCom as `job_id`); log
        how to wait for it and return its ID."""
        self.log.info(
            "not waiting for %s %s (status %s): wait for it with "
            "WaitForJobSensor(job_id=..., job_type=%r), reading XCom key 'job_id' of task %s",
            self.kind.label,
            job.id,
            job.status,
            self.kind.name,
            self.task_id,
        )
        return job.id

    def _deadline(self) -> float | None:
        return None if self.timeout is None else time.time() + self.timeout

    def _wait(self, current: Any, resource_id: str, deadline: float | None) -> JobEvent:
        """Wait for `resource_id`: returns the final event (blocking), or defers.

        `current` is the resource as last fetched; if it is already terminal there is
        nothing to wait for (and deferring a trigger that fires at once would hit Airflow
        3.3.2's fast-trigger race).
        """
        self._active_id = resource_id
        policy = PollPolicy(interval=self.poll_interval)
        waiter = Waiter(self.kind, resource_id, policy, deadline)
        step = waiter.on_resource(current, time.time())
        if isinstance(step, JobEvent):
            return step
        if not self.deferrable:
            return wait_blocking(self.client, waiter, log=self.log)
        self._defer_wait(
            self.kind,
            resource_id,
            poll_interval=self.poll_interval,
            deadline=deadline,
            cancel_on_kill=self.cancel_on_kill,
        )

    def resume_execution(self, next_method: str, next_kwargs: Any, context: Any) -> Any:
        """If the scheduler's own deferral timeout (our backstop) fires before the trigger
        reports the deadline, still cancel the job and fail as a timeout, not retried."""
        try:  # airflow.sdk.exceptions from 3.2; airflow.exceptions on 3.1
            from airflow.sdk.exceptions import TaskDeferralTimeout
        except ImportError:  # pragma: no cover - Airflow 3.1
            from airflow.exceptions import TaskDeferralTimeout  # type: ignore[no-redef]

        try:
            return super().resume_execution(next_method, next_kwargs, context)
        except TaskDeferralTimeout as error:
            ti = context["ti"]
            resource_id = ti.xcom_pull(task_ids=ti.task_id, key="job_id") or ""
            if resource_id:
                self._cancel(resource_id, reason="deferral timeout")
            raise PredibaseJobTimeout(
                f"{self.task_id}: the deferral timed out: {error}",
                resource_id=resource_id,
                remote_status=None,
            ) from error

    @fail_fast_on_rejection
    def execute_complete(self, context: Any, event: dict[str, Any] | None = None, **_: Any) -> Any:
        """Resume after the trigger fired: validate the event, then finish."""
        job_event = self._job_event(self.kind, event)
        self._active_id = job_event.resource_id
        self._publish(context, self.kind, job_event.resource_id, push=False)
        return self._finish(context, job_event)

    def _finish(self, context: Any, event: JobEvent) -> Any:
        """Success -> the operator's result; anything else raises."""
        self._raise_for_event(event)
        return self._on_success(context, event)

    def _on_success(self, context: Any, event: JobEvent) -> Any:
        raise NotImplementedError

    def _check_own(self, job: Any, event: JobEvent) -> None:
        """A result is only ever read from the job that was waited on."""
        if job.id != event.resource_id:
            raise PredibaseJobFailed(
                f"{self.task_id}: waited on {self.kind.label} {event.resource_id}, but the "
                f"result is for {job.id}: refusing it",
                resource_id=event.resource_id,
                remote_status=event.remote_status,
            )

    def _raise_for_event(self, event: JobEvent) -> None:
        if event.status == "success":
            return
        error_class: type[PredibaseJobFailed | PredibaseJobCancelled | PredibaseJobTimeout]
        if event.status == "timeout":
            self._cancel(event.resource_id, reason="timeout")
            error_class = PredibaseJobTimeout
        elif event.status == "cancelled":
            error_class = PredibaseJobCancelled
        else:
            error_class = PredibaseJobFailed
        raise error_class(
            event.message, resource_id=event.resource_id, remote_status=event.remote_status
        )

    def _cancel(self, resource_id: str, *, reason: str) -> None:
        cancel = self.kind.cancel
        if cancel is None:
            return
        try:
            cancel(self.client, resource_id)
            self.log.info("cancelled %s (%s)", resource_id, reason)
        except PredibaseError as error:
            self.log.warning("could not cancel %s (%s): %s", resource_id, reason, error)

    def on_kill(self) -> None:
        """Blocking mode: the worker is killing this task; don't leave a GPU job running
        that nothing will come back for.

        A kill that a retry or a re-run will follow (a worker shutting down, a pod
        rollout, a user's clear) leaves the job running: the next try re-attaches to it.
        Cancelled only when this task will not run again: marked failed or success by a
        user, or killed on its last try.
        """
        if not (self.cancel_on_kill and self._active_id):
            return
        runs_again = self._task_runs_again()
        if runs_again:
            self.log.info(
                "task will run again (%s): leaving %s running", runs_again, self._active_id
            )
            return
        self._cancel(self._active_id, reason="task killed")

    def _task_runs_again(self) -> str | None:
        """Why this task instance will run again after this kill, or None if it will not."""
        from airflow_predibase.triggers.base import TASK_STILL_WAITING, read_task_state

        ti = self._ti
        if ti is None:
            return None
        state = read_task_state(ti, self.log, timeout=5.0)
        if state not in ("unknown", "running", None):
            if state in TASK_STILL_WAITING:
                return f"its state is {state}"  # cleared (restarting), or already re-queued
            return None  # marked failed or success by a user, or its run was deleted
        # Still running as far as Airflow knows: this kill fails the try, which is retried
        # when retries are left.
        server = getattr(ti, "_ti_context_from_server", None)
        should_retry = getattr(server, "should_retry", None)
        if should_retry is None:
            retries = int(getattr(getattr(ti, "task", None), "retries", 0) or 0)
            try_number = int(getattr(ti, "try_number", 1) or 1)
            max_tries = int(getattr(ti, "max_tries", retries) or 0)
            should_retry = retries > 0 and try_number <= max_tries
        return "a retry is left" if should_retry else None


def coerce_int(value: Any, field: str) -> int | None:
    """Templated ints arrive as strings unless the DAG renders native objects."""
    if value is None or value == "":
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ValueError(f"{field} must be an integer, got {value!r}") from None


def coerce_mapping(value: Any, field: str) -> dict[str, Any]:
    """Templated dicts may arrive as a JSON string."""

    if value is None or value == "":
        return {}
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            raise ValueError(f"{field} must be a mapping or JSON object, got {value!r}") from None
    if not isinstance(value, dict):
        raise ValueError(f"{field} must be a mapping, got {type(value).__name__}")
    return value


def coerce_list(value: Any, field: str) -> list[Any] | None:
    """Templated lists may arrive as a JSON string."""

    if value is None or value == "":
        return None
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            raise ValueError(f"{field} must be a list or JSON array, got {value!r}") from None
    if not isinstance(value, Sequence) or isinstance(value, str):
        raise ValueError(f"{field} must be a list, got {type(value).__name__}")
    return list(value)


def check_choice(field: str, value: Any, choices: Sequence[Any], hint: str = "") -> None:
    """ValueError naming the field and the valid choices (rendered values only)."""
    if not is_templated(value) and value not in choices:
        valid = ", ".join(str(c) for c in choices)
        raise ValueError(f"{field}={value!r} is not valid; choose one of: {valid}{hint}")


def is_templated(value: Any) -> bool:
    """True while a value still holds Jinja (validation waits until it is rendered)."""
    return isinstance(value, str) and "{{" in value
