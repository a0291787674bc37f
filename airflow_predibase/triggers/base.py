"""One polling trigger for every Predibase resource; subclasses only name the resource.

Kwargs are JSON scalars only (IDs, the conn_id, intervals, an absolute deadline): they are
stored in the trigger table and shown in the trigger's repr, so a token never goes there.
"""

from __future__ import annotations

import asyncio
import sys
import threading
import time
from collections.abc import AsyncIterator, Awaitable
from typing import Any, ClassVar

from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_predibase.client.errors import NotFoundError, PredibaseError
from airflow_predibase.kinds import (
    BATCH_INFERENCE_JOB,
    DATASET,
    DEPLOYMENT,
    FINETUNING_JOB,
    ResourceKind,
)
from airflow_predibase.triggers._gc_freeze import gc_freeze_after_first_poll
from airflow_predibase.waiting.events import JobEvent
from airflow_predibase.waiting.waiter import DEFAULT_MAX_UNKNOWN_STATUS, PollPolicy, Waiter

#: The trigger class of each kind, by kind name; filled as the subclasses below are defined.
_TRIGGERS: dict[str, type[PredibasePollingTrigger]] = {}

#: Kills still running after their on_kill was interrupted (strong references keep the
#: event loop from dropping them).
_KILLS: set[asyncio.Future[None]] = set()


class PredibasePollingTrigger(BaseTrigger):
    """Polls one resource until it is terminal, the deadline passes, or polling keeps failing.

    :param resource_id: job ID, or deployment / dataset name.
    :param predibase_conn_id: the Airflow connection; looked up asynchronously.
    :param poll_interval: seconds between polls (jittered).
    :param deadline: wall-clock epoch seconds after which a ``timeout`` event is sent.
    :param cancel_on_kill: cancel the remote job when a user kills the deferred task (3.3+).
    :param max_consecutive_errors: transient poll failures in a row that end the wait.
    :param first_poll_delay: minimum seconds before the first poll.
    :param max_unknown_status: seconds a status this version does not know may last before
        the wait ends as ``failed``; None for no bound.
    """

    #: What the subclass waits on; set once per subclass, which also registers it.
    kind: ClassVar[ResourceKind]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "kind" in cls.__dict__:
            _TRIGGERS[cls.kind.name] = cls

    def __init__(
        self,
        resource_id: str,
        predibase_conn_id: str = "predibase_default",
        poll_interval: float = 30.0,
        deadline: float | None = None,
        cancel_on_kill: bool = True,
        max_consecutive_errors: int = 10,
        first_poll_delay: float = 1.0,
        max_unknown_status: float | None = DEFAULT_MAX_UNKNOWN_STATUS,
    ) -> None:
        super().__init__()
        self.resource_id = resource_id
        self.predibase_conn_id = predibase_conn_id
        self.poll_interval = float(poll_interval)
        self.deadline = None if deadline is None else float(deadline)
        self.cancel_on_kill = cancel_on_kill
        self.max_consecutive_errors = int(max_consecutive_errors)
        self.first_poll_delay = float(first_poll_delay)
        self.max_unknown_status = None if max_unknown_status is None else float(max_unknown_status)

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "resource_id": self.resource_id,
                "predibase_conn_id": self.predibase_conn_id,
                "poll_interval": self.poll_interval,
                "deadline": self.deadline,
                "cancel_on_kill": self.cancel_on_kill,
                "max_consecutive_errors": self.max_consecutive_errors,
                "first_poll_delay": self.first_poll_delay,
                "max_unknown_status": self.max_unknown_status,
            },
        )

    def _waiter(self) -> Waiter:
        policy = PollPolicy(
            interval=self.poll_interval,
            first_poll_delay=self.first_poll_delay,
            max_consecutive_errors=self.max_consecutive_errors,
            max_unknown_status=self.max_unknown_status,
        )
        # The event leaves without the resource (below), so the waiter need not keep it.
        return Waiter(
            self.kind, self.resource_id, policy, self.deadline, logger=self.log, keep_resource=False
        )

    def _poll_budget(self) -> float | None:
        """Seconds one poll may take: until a little after the deadline, if there is one."""
        if self.deadline is None:
            return None
        return max(self.deadline - time.time(), 0.0) + 5.0

    async def _client(self) -> Any:
        # Loaded in the triggerer, not where a DAG file that defers is parsed.
        from airflow_predibase.hooks.predibase import PredibaseHook

        return await PredibaseHook(predibase_conn_id=self.predibase_conn_id).get_async_client()

    async def run(self) -> AsyncIterator[TriggerEvent]:
        waiter = self._waiter()
        step: JobEvent | float = waiter.first_delay(time.time())
        client = None
        polled = False
        while not isinstance(step, JobEvent):
            await asyncio.sleep(step)
            try:
                client = client or await self._client()
                # One slow poll (retries, a busy pool) must not carry the wait past the
                # deadline: the scheduler's backstop would then fire without a cancel.
                resource = await _within(
                    self.kind.get(client, self.resource_id), self._poll_budget()
                )
                waiter.check_identity(resource)
            except asyncio.TimeoutError:  # the builtin TimeoutError only from Python 3.11
                step = waiter.timeout_event()
                break
            except PredibaseError as error:
                self.log.warning("poll of %s failed: %s", self.resource_id, error)
                step = waiter.on_error(error, time.time())
                continue
            line = waiter.progress_line(resource)
            if line:
                self.log.info(line)
            if not polled:
                polled = True
                gc_freeze_after_first_poll(time.monotonic())
            step = waiter.on_resource(resource, time.time())
            del resource, line  # not across the sleep: the model is ~5 KB a wait
        if step.status == "success":
            self.log.info(step.message)
        else:
            self.log.warning("%s: %s", step.status, step.message)
        # The triggerer logs every event it fires: keep it to a line. The worker reads the
        # resource again if it needs more than the status.
        yield TriggerEvent(step.model_copy(update={"resource": None}).to_payload())

    async def on_kill(self) -> None:
        """Airflow 3.3+: the user marked the deferred task failed/success or cleared it.

        Not called on triggerer shutdown or restart, so a restart never cancels the job.
        The triggerer re-sends its cancel on every state sync (about once a second) until
        the trigger has finished, which interrupts an on_kill still waiting on the task
        state or the cancel request; so the kill runs shielded, to its end.
        """
        kill = asyncio.ensure_future(self._kill())
        _KILLS.add(kill)
        kill.add_done_callback(_KILLS.discard)
        await asyncio.shield(kill)

    async def _kill(self) -> None:
        cancel = self.kind.cancel
        if not (self.cancel_on_kill and cancel):
            return
        # A sync SDK call needs a greenback portal, which the task Airflow runs on_kill in
        # (asyncio.wait_for's) does not have: ask from a worker thread.
        state = await asyncio.to_thread(self._task_state)
        if state in TASK_STILL_WAITING:
            # Cleared and re-queued, or taken over by another triggerer: the task's next
            # try re-attaches to this job, so it must keep running.
            self.log.info("task is %s, not finished: leaving %s running", state, self.resource_id)
            return
        try:
            client = await self._client()
            await cancel(client, self.resource_id)
            self.log.info("cancelled %s %s on kill", self.kind.label, self.resource_id)
        except PredibaseError as error:
            self.log.warning("could not cancel %s on kill: %s", self.resource_id, error)

    def _task_state(self) -> str | None:
        """The task instance's state now, or "unknown" if it cannot be read (then on_kill
        cancels: a user action is by far the likeliest reason it was called)."""
        ti = getattr(self, "task_instance", None)
        if ti is None:
            return "unknown"
        state = read_task_state(ti, self.log)
        if state == "unknown":
            self.log.warning("cannot read the task's state: cancelling")
        return state


async def _within(poll: Awaitable[Any], seconds: float | None) -> Any:
    """`poll`'s result, or TimeoutError after `seconds` (None: no bound). `asyncio.timeout`
    where there is one (3.11+): unlike `wait_for`, it wraps no extra task per poll."""
    if seconds is None:
        return await poll
    if sys.version_info >= (3, 11):
        async with asyncio.timeout(seconds):
            return await poll
    return await asyncio.wait_for(poll, seconds)


def read_task_state(ti: Any, log: Any, *, timeout: float | None = None) -> str | None:
    """The state of task instance `ti` (dag_id, task_id, run_id, map_index) now, as Airflow's
    API server has it: "missing" if it is gone, "unknown" if it cannot be read.

    With `timeout`, asked from a thread and given up after that many seconds: a task's
    SIGTERM handler may interrupt the task while it holds the supervisor channel.
    """
    if timeout is None:
        return _ask_task_state(ti, log)
    answer: list[str | None] = []
    asking = threading.Thread(target=lambda: answer.append(_ask_task_state(ti, log)), daemon=True)
    asking.start()
    asking.join(timeout)
    if not answer:
        log.warning("no answer about the task's state within %gs", timeout)
        return "unknown"
    return answer[0]


def _ask_task_state(ti: Any, log: Any) -> str | None:
    try:
        from airflow.sdk.execution_time.task_runner import RuntimeTaskInstance

        map_index = getattr(ti, "map_index", -1)
        states = RuntimeTaskInstance.get_task_states(
            dag_id=ti.dag_id, map_index=map_index, task_ids=[ti.task_id], run_ids=[ti.run_id]
        )
        name = ti.task_id if map_index < 0 else f"{ti.task_id}_{map_index}"
        state = states.get(ti.run_id, {}).get(name, "missing")
    except Exception as error:  # an old Airflow, or no supervisor to ask
        log.warning("cannot read the task's state (%s)", error)
        return "unknown"
    return None if state is None else str(state)


#: States in which a task instance will run (or is running) again: it still owns its job.
TASK_STILL_WAITING = frozenset(
    {
        None,
        "scheduled",
        "queued",
        "running",
        "deferred",
        "up_for_retry",
        "up_for_reschedule",
        "restarting",
    }
)


class FinetuningJobTrigger(PredibasePollingTrigger):
    """Waits for a fine-tuning job to complete."""

    kind = FINETUNING_JOB


class BatchInferenceJobTrigger(PredibasePollingTrigger):
    """Waits for a batch inference job to complete."""

    kind = BATCH_INFERENCE_JOB


class DeploymentTrigger(PredibasePollingTrigger):
    """Waits for a deployment to serve (ready or standby) or fail.

    A deployment has no cancel. On a kill that ends the task (not a clear, not a re-queue),
    it is deleted if its description still carries `owner_marker`: the operator passes the
    marker only for a deployment this task instance created and never saw serve, and only
    with ``delete_on_failure`` and ``cancel_on_kill`` (docs/operators/deploy.md).
    """

    kind = DEPLOYMENT

    # -- issue 10: delete-on-kill of a deployment this task created (operators/deployments.py)
    def __init__(self, *args: Any, owner_marker: str | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.owner_marker = owner_marker

    def serialize(self) -> tuple[str, dict[str, Any]]:
        classpath, kwargs = super().serialize()
        return classpath, {**kwargs, "owner_marker": self.owner_marker}

    async def _kill(self) -> None:
        if not self.owner_marker:
            return
        state = await asyncio.to_thread(self._task_state)
        if state in TASK_STILL_WAITING:
            self.log.info("task is %s, not finished: leaving %s", state, self.resource_id)
            return
        try:
            client = await self._client()
            deployment = await client.get_deployment(self.resource_id)
            if self.owner_marker not in (deployment.description or ""):
                self.log.info("deployment %s is not this task's: leaving it", self.resource_id)
                return
            if deployment.status.is_serving:
                self.log.info("deployment %s serves now: leaving it", self.resource_id)
                return
            await client.delete_deployment(self.resource_id)
            self.log.info("deleted deployment %s, which never served, on kill", self.resource_id)
        except NotFoundError:
            return
        except PredibaseError as error:
            self.log.warning("could not delete deployment %s on kill: %s", self.resource_id, error)

    # -- end of issue 10


class DatasetTrigger(PredibasePollingTrigger):
    """Waits for a dataset to be connected or errored."""

    kind = DATASET


def trigger_for(kind: ResourceKind) -> type[PredibasePollingTrigger]:
    """The trigger that waits on `kind`."""
    return _TRIGGERS[kind.name]
