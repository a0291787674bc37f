"""What every Predibase operator shares: the connection, waiting, timeouts and kill.

Waiting is the same in both modes. Blocking mode polls on the worker; deferred mode hands
the same `Waiter` rules to a trigger. Either way the wait ends in one `JobEvent`, and one
method, `_raise_for_event`, turns it into success or a clear failure.
"""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from airflow.providers.common.compat.sdk import BaseOperator

from airflow_predibase.client.errors import (
    AuthenticationError,
    BadRequestError,
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
    if value is None or value == "":
        return None
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
    else:
        try:
            seconds = float(value)
        except (TypeError, ValueError):
            raise ValueError(f"{field} must be seconds or a timedelta, got {value!r}") from None
    if seconds <= 0:
        raise ValueError(f"{field} must be positive, got {value!r}")
    return seconds


F = TypeVar("F", bound=Callable[..., Any])


def fail_fast_on_rejection(method: F) -> F:
    """Decorate `execute`: a request Predibase rejects for good (bad request, bad token,
    no permission) fails the task without retries, with the server's reason."""

    @functools.wraps(method)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        except (BadRequestError, AuthenticationError, PermissionDeniedError) as error:
            raise PredibaseRequestRejected(f"{self.task_id}: {error}") from error

    return wrapper  # type: ignore[return-value]


class PredibaseBaseOperator(PredibaseWaitMixin, BaseOperator):
    """Base for the Predibase operators.

    :param predibase_conn_id: Airflow connection of type ``predibase``.
    :param deferrable: wait in the triggerer instead of holding a worker slot. Defaults to
        ``[operators] default_deferrable``.
    :param poll_interval: seconds between status checks (jittered).
    :param timeout: seconds (or a timedelta) this try waits for the remote work before it
        fails with ``PredibaseJobTimeout``; enforced while deferred too. The remote job is
        cancelled when it passes. ``None`` waits forever.
    :param cancel_on_kill: cancel the remote job when the task is killed or marked
        failed (in blocking mode through ``on_kill``; deferred, through the trigger's
        ``on_kill`` on Airflow 3.3+).
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
        timeout: timedelta | float | None = None,
        cancel_on_kill: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.predibase_conn_id = predibase_conn_id
        self.deferrable = default_deferrable() if deferrable is None else deferrable
        self.poll_interval = _seconds(poll_interval, "poll_interval") or 30.0
        self.timeout = _seconds(timeout, "timeout")
        self.cancel_on_kill = cancel_on_kill
        self._active_id: str | None = None

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
        description: str | None,
        rerun_on_clear: bool,
    ) -> Any:
        """Start this task instance's job exactly once (see _idempotency), publish it, wait.

        `create` receives the description with the idempotency marker and sends the POST.
        """
        # Loaded when a job is started, not when a DAG file naming the operator is parsed.
        from airflow_predibase.operators._idempotency import (
            Ledger,
            clear_cycle,
            resolve_job,
            task_key,
        )

        ledger = Ledger(context)
        resolution = resolve_job(
            key=task_key(context),
            cycle=clear_cycle(context),
            ledger=ledger,
            list_jobs=list_jobs,
            get_job=get_job,
            create=create,
            description=description,
            rerun_on_clear=rerun_on_clear,
            log=self.log,
        )
        job = resolution.job
        ledger.remember(job.id)
        context["ti"].xcom_push(key="job_id", value=job.id)
        self._publish(context, self.kind, job.id)
        self.log.info("job %s %s (generation %d)", job.id, resolution.action, resolution.generation)
        event = self._wait(job, job.id, self._deadline())
        return self._finish(context, event)

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
        """Blocking mode: the worker is killing this task; don't leave a GPU job running."""
        if self.cancel_on_kill and self._active_id:
            self._cancel(self._active_id, reason="task killed")


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
