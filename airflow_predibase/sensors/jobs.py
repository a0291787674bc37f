"""WaitForJobSensor: wait for a Predibase job (or deployment, or dataset) started elsewhere."""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import (
    AirflowException,
    AirflowSensorTimeout,
    BaseSensorOperator,
    conf,
)

from airflow_predibase.links import (
    XCOM_CONSOLE_URL,
    PredibaseConsoleLink,
    console_base,
    console_url,
)
from airflow_predibase.triggers.events import JobEvent
from airflow_predibase.triggers.polling import KINDS, PollPolicy, Waiter, resource_kind

if TYPE_CHECKING:
    from airflow_predibase.hooks.predibase import PredibaseHook

_TRIGGERS = {
    "finetuning_job": "FinetuningJobTrigger",
    "batch_inference_job": "BatchInferenceJobTrigger",
    "deployment": "DeploymentTrigger",
    "dataset": "DatasetTrigger",
}


class WaitForJobSensor(BaseSensorOperator):
    """Succeeds when the job reaches a success state; fails with the server's reason if it
    fails. Never cancels the job: it was started elsewhere.

    :param job_id: job ID (or deployment / dataset name for those job types).
    :param job_type: ``finetuning_job`` (default), ``batch_inference_job``, ``deployment``
        (waits until it serves) or ``dataset`` (waits until connected).
    :param predibase_conn_id: Airflow connection of type ``predibase``.
    :param deferrable: wait in the triggerer. Defaults to ``[operators] default_deferrable``.
    :param poke_interval: seconds between checks.
    :param timeout: seconds before ``AirflowSensorTimeout`` (a skip with ``soft_fail``).
    Returns the job as a dict (XCom).
    """

    template_fields: Sequence[str] = ("job_id",)
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
        if job_type not in KINDS:
            raise ValueError(
                f"job_type={job_type!r} is not valid; choose one of: {', '.join(KINDS)}"
            )
        if deferrable is None:
            deferrable = conf.getboolean("operators", "default_deferrable", fallback=False)
        self.job_id = job_id
        self.job_type = job_type
        self.predibase_conn_id = predibase_conn_id
        self.deferrable = deferrable
        self._result: dict[str, Any] | None = None

    @cached_property
    def hook(self) -> PredibaseHook:
        from airflow_predibase.hooks.predibase import PredibaseHook

        return PredibaseHook(predibase_conn_id=self.predibase_conn_id)

    def _waiter(self, deadline: float | None) -> Waiter:
        policy = PollPolicy(interval=float(self.poke_interval))
        return Waiter(resource_kind(self.job_type), str(self.job_id), policy, deadline)

    def _check(self, event: JobEvent) -> dict[str, Any]:
        if event.status == "success":
            return event.resource or {}
        if event.status == "timeout":
            raise AirflowSensorTimeout(event.message)
        from airflow_predibase.exceptions import PredibaseJobCancelled, PredibaseWatchedJobFailed

        # Not retried either way: the job was started elsewhere, a retry would only see the
        # same end. Both are AirflowFailExceptions, so `soft_fail` turns them into a skip.
        error_class = (
            PredibaseJobCancelled if event.status == "cancelled" else PredibaseWatchedJobFailed
        )
        raise error_class(
            event.message, resource_id=event.resource_id, remote_status=event.remote_status
        )

    def poke(self, context: Any) -> bool:
        from airflow_predibase.client.errors import PredibaseError
        from airflow_predibase.triggers.polling import is_transient

        kind = resource_kind(self.job_type)
        waiter = self._waiter(None)
        try:
            resource = getattr(self.hook.get_client(), kind.get_method)(str(self.job_id))
        except PredibaseError as error:
            if is_transient(error):
                self.log.warning("poll failed, will retry at the next poke: %s", error)
                return False
            raise AirflowException(f"cannot read {kind.label} {self.job_id}: {error}") from error
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
            from airflow.providers.common.compat.sdk import AirflowFailException

            raise AirflowFailException(
                f"{self.task_id}: job_id is empty (did the template render to nothing? "
                'trigger the DAG with conf {"job_id": "<id>"})'
            )
        settings = self.hook.get_settings()
        url = console_url(console_base(settings.base_url), self.job_type, str(self.job_id))
        context["ti"].xcom_push(key=XCOM_CONSOLE_URL, value=url)
        self.log.info("waiting for %s %s: %s", self.job_type, self.job_id, url)
        if not self.deferrable:
            super().execute(context)
            return self._result
        if self._first_check(context):
            return self._result
        from airflow_predibase.triggers import base as triggers

        deadline = time.time() + float(self.timeout) if self.timeout else None
        trigger_class = getattr(triggers, _TRIGGERS[self.job_type])
        self.defer(
            trigger=trigger_class(
                resource_id=str(self.job_id),
                predibase_conn_id=self.predibase_conn_id,
                poll_interval=float(self.poke_interval),
                deadline=deadline,
                cancel_on_kill=False,
                first_poll_delay=min(float(self.poke_interval), 5.0),
            ),
            method_name="execute_complete",
            timeout=timedelta(seconds=float(self.timeout) + 120) if self.timeout else None,
        )

    def _first_check(self, context: Any) -> bool:
        """One poke before deferring, with the same `soft_fail` rule the poke loop applies."""
        from airflow.providers.common.compat.sdk import AirflowFailException, AirflowSkipException

        try:
            return self.poke(context)
        except (AirflowFailException, AirflowSensorTimeout) as error:
            if self.soft_fail:
                raise AirflowSkipException(f"soft_fail: {error}") from error
            raise

    def execute_complete(self, context: Any, event: dict[str, Any] | None = None, **_: Any) -> Any:
        try:
            job_event = JobEvent.model_validate(event)
        except ValueError as error:
            raise AirflowException(f"malformed trigger event {event!r}: {error}") from None
        return self._check(job_event)
