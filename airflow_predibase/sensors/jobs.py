"""WaitForJobSensor: wait for a Predibase job (or deployment, or dataset) started elsewhere."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from airflow.providers.common.compat.sdk import (
    AirflowException,
    AirflowFailException,
    AirflowSensorTimeout,
    AirflowSkipException,
    BaseSensorOperator,
)

from airflow_predibase.client.errors import (
    AuthenticationError,
    PermissionDeniedError,
    PredibaseError,
)
from airflow_predibase.deferral import PredibaseWaitMixin, default_deferrable
from airflow_predibase.exceptions import PredibaseJobCancelled, PredibaseWatchedJobFailed
from airflow_predibase.kinds import ResourceKind, resource_kind
from airflow_predibase.links import PredibaseConsoleLink
from airflow_predibase.waiting.events import JobEvent
from airflow_predibase.waiting.waiter import (
    DEFAULT_MAX_UNKNOWN_STATUS,
    PollPolicy,
    Waiter,
    is_transient,
)


class WaitForJobSensor(PredibaseWaitMixin, BaseSensorOperator):
    """Succeeds when the job reaches a success state; fails with the server's reason if it
    fails. Never cancels the job: it was started elsewhere.

    :param job_id: job ID (or deployment / dataset name for those job types).
    :param job_type: ``finetuning_job`` (default), ``batch_inference_job``, ``deployment``
        (waits until it serves) or ``dataset`` (waits until connected).
    :param predibase_conn_id: Airflow connection of type ``predibase``.
    :param deferrable: wait in the triggerer. Defaults to ``[operators] default_deferrable``.
    :param poke_interval: seconds between checks.
    :param timeout: seconds before ``AirflowSensorTimeout`` (a skip with ``soft_fail``).
        Airflow's sensor parameter: ``[sensors] default_timeout``, 7 days, unless set.
    Returns the job as a dict (XCom). A status this version does not know counts as not
    finished; lasting ``PollPolicy.max_unknown_status`` it fails the sensor (within one
    try in poke mode; deferred, within the trigger's wait).
    """

    template_fields: Sequence[str] = ("job_id",)
    #: Seconds a status this version does not know may last before the sensor fails.
    max_unknown_status: float | None = DEFAULT_MAX_UNKNOWN_STATUS
    operator_extra_links = (PredibaseConsoleLink(),)
    ui_color = "#e8e3ff"

    def __init__(
        self,
        *,
        job_id: str,
        job_type: str = "finetuning_job",
        predibase_conn_id: str = "predibase_default",
        deferrable: bool | None = None,
        poke_interval: float = 30.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(poke_interval=poke_interval, **kwargs)
        resource_kind(job_type)  # a bad job_type fails when the DAG is parsed
        self.job_id = job_id
        self.job_type = job_type
        self.predibase_conn_id = predibase_conn_id
        self.deferrable = default_deferrable() if deferrable is None else deferrable
        self._result: dict[str, Any] | None = None
        #: One waiter for the pokes of one try (poke mode), so the bound on an unknown
        #: status and its warning span pokes.
        self._poke_waiter: Waiter | None = None

    @property
    def kind(self) -> ResourceKind:
        return resource_kind(self.job_type)

    def _waiter(self, deadline: float | None) -> Waiter:
        policy = PollPolicy(
            interval=float(self.poke_interval), max_unknown_status=self.max_unknown_status
        )
        return Waiter(self.kind, str(self.job_id), policy, deadline)

    def _check(self, event: JobEvent) -> dict[str, Any]:
        if event.status == "success":
            return event.resource or {}
        if event.status == "timeout":
            raise AirflowSensorTimeout(event.message)
        # Not retried either way: the job was started elsewhere, a retry would only see the
        # same end. Both are AirflowFailExceptions, so `soft_fail` turns them into a skip.
        error_class = (
            PredibaseJobCancelled if event.status == "cancelled" else PredibaseWatchedJobFailed
        )
        raise error_class(
            event.message, resource_id=event.resource_id, remote_status=event.remote_status
        )

    def poke(self, context: Any) -> bool:
        if self._poke_waiter is None:
            self._poke_waiter = self._waiter(None)
        waiter = self._poke_waiter
        try:
            resource = waiter.check_identity(
                self.kind.get(self.hook.get_client(), str(self.job_id))
            )
        except PredibaseError as error:
            if is_transient(error):
                self.log.warning("poll failed, will retry at the next poke: %s", error)
                return False
            what = f"{self.kind.label} {self.job_id}"
            hint = ""
            if isinstance(error, AuthenticationError | PermissionDeniedError):
                hint = f" (check the API token of connection {self.predibase_conn_id!r})"
            raise AirflowException(f"cannot read {what}: {error}{hint}") from error
        line = waiter.progress_line(resource)
        if line:
            self.log.info(line)
        step = waiter.on_resource(resource, time.time())
        if not isinstance(step, JobEvent):
            return False
        self._result = self._check(step)
        return True

    def execute(self, context: Any) -> Any:
        if not str(self.job_id or "").strip():
            raise AirflowFailException(
                f"{self.task_id}: job_id is empty (did the template render to nothing? "
                'trigger the DAG with conf {"job_id": "<id>"})'
            )
        self._publish(context, self.kind, str(self.job_id))
        if not self.deferrable:
            super().execute(context)
            return self._result
        if self._first_check(context):
            return self._result
        deadline = time.time() + float(self.timeout) if self.timeout else None
        self._defer_wait(
            self.kind,
            str(self.job_id),
            poll_interval=float(self.poke_interval),
            deadline=deadline,
            cancel_on_kill=False,
            max_unknown_status=self.max_unknown_status,
        )

    def _first_check(self, context: Any) -> bool:
        """One poke before deferring, with the same `soft_fail` rule the poke loop applies."""
        try:
            return self.poke(context)
        except (AirflowFailException, AirflowSensorTimeout) as error:
            if self.soft_fail:
                raise AirflowSkipException(f"soft_fail: {error}") from error
            raise

    def execute_complete(self, context: Any, event: dict[str, Any] | None = None, **_: Any) -> Any:
        # A resumed task is a fresh operator: keep the URL for its extra link (already in XCom).
        self._publish(context, self.kind, str(self.job_id), push=False)
        return self._check(self._job_event(self.kind, event))
