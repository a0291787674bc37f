"""What the operators and the sensor share about waiting in Airflow.

`PredibaseWaitMixin` owns the pieces that touch Airflow: the hook, the ``deferrable``
default, publishing the console URL, handing a wait to the kind's trigger, and validating
the event the trigger sends back. The rules of the wait itself live in the Airflow-free
`airflow_predibase.waiting`; what each end of a wait means (fail, retry, skip) stays with
the operator or the sensor.
"""

from __future__ import annotations

import time
from datetime import timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any, NoReturn

from airflow.providers.common.compat.sdk import AirflowException, conf

from airflow_predibase.kinds import ResourceKind
from airflow_predibase.links import XCOM_CONSOLE_URL, console_base, console_url
from airflow_predibase.waiting.events import JobEvent
from airflow_predibase.waiting.waiter import DEFAULT_MAX_UNKNOWN_STATUS, is_about

if TYPE_CHECKING:
    from airflow_predibase.hooks.predibase import PredibaseHook

#: Extra time the scheduler's own deferral timeout allows beyond our deadline: our trigger
#: should always report the timeout first, so the job gets cancelled.
DEFER_TIMEOUT_GRACE = 120.0
#: The longest a trigger waits before its first poll, whatever the poll interval.
MAX_FIRST_POLL_DELAY = 5.0


def default_deferrable() -> bool:
    """``[operators] default_deferrable``, the setting every deferrable operator follows."""
    return bool(conf.getboolean("operators", "default_deferrable", fallback=False))


class PredibaseWaitMixin:
    """Mixed into `BaseOperator` subclasses that wait on a Predibase resource.

    The class using it sets ``predibase_conn_id`` and ``deferrable`` and is an operator
    (it has ``log``, ``task_id`` and ``defer``).
    """

    predibase_conn_id: str
    log: Any
    defer: Any
    #: The console URL of what this try works on, once known (read by the extra link).
    _console_url: str | None = None

    @cached_property
    def hook(self) -> PredibaseHook:
        # Loaded on first use, not when a DAG file naming an operator is parsed.
        from airflow_predibase.hooks.predibase import PredibaseHook

        return PredibaseHook(predibase_conn_id=self.predibase_conn_id)

    def _publish(
        self, context: Any, kind: ResourceKind, resource_id: str, *, push: bool = True
    ) -> str:
        """Log the console URL and keep it for the task's extra link; `push` it to XCom too
        (once per try: a task resumed after deferral still has it, so it passes False)."""
        settings = self.hook.get_settings()
        url = console_url(console_base(settings.base_url), kind, resource_id)
        if push:
            context["ti"].xcom_push(key=XCOM_CONSOLE_URL, value=url)
        self._console_url = url
        self.log.info("Predibase %s %s: %s", kind.label, resource_id, url)
        return url

    def _defer_wait(
        self,
        kind: ResourceKind,
        resource_id: str,
        *,
        poll_interval: float,
        deadline: float | None,
        cancel_on_kill: bool,
        max_unknown_status: float | None = DEFAULT_MAX_UNKNOWN_STATUS,
    ) -> NoReturn:
        """Hand the wait to the kind's trigger; `execute_complete` gets its event.

        The scheduler's own deferral timeout is a backstop a little after `deadline`, so
        the trigger reports the timeout first.
        """
        # Loaded when a task defers, not when a DAG file naming an operator is parsed
        # (Airflow's trigger base alone costs about 5 ms there).
        from airflow_predibase.triggers.base import trigger_for

        trigger = trigger_for(kind)(
            resource_id=resource_id,
            predibase_conn_id=self.predibase_conn_id,
            poll_interval=poll_interval,
            deadline=deadline,
            cancel_on_kill=cancel_on_kill,
            first_poll_delay=min(poll_interval, MAX_FIRST_POLL_DELAY),
            max_unknown_status=max_unknown_status,
        )
        backstop = None
        if deadline is not None:
            backstop = timedelta(seconds=max(deadline - time.time(), 0) + DEFER_TIMEOUT_GRACE)
        self.log.info("deferring: waiting for %s %s in the triggerer", kind.label, resource_id)
        self.defer(trigger=trigger, method_name="execute_complete", timeout=backstop)
        raise AssertionError("defer() returned")  # pragma: no cover - defer always raises

    def _job_event(self, kind: ResourceKind, event: dict[str, Any] | None) -> JobEvent:
        """The trigger's event about a `kind`, validated (it crossed the database as JSON).
        A trigger sends the status only, since the triggerer logs every event: on success
        the resource is read here, once, for the result."""
        try:
            job_event = JobEvent.model_validate(event)
        except ValueError as error:
            raise AirflowException(f"malformed trigger event {event!r}: {error}") from None
        if job_event.status != "success" or job_event.resource is not None:
            return job_event
        resource = kind.get(self.hook.get_client(), job_event.resource_id)
        if not is_about(resource, job_event.resource_id):
            raise AirflowException(
                f"asked for {kind.label} {job_event.resource_id}, the answer is about another "
                "one: not trusting it (the retry reads it again)"
            )
        return job_event.model_copy(
            update={"resource": resource.model_dump(mode="json", by_alias=True)}
        )
