"""A fine-tune whose first try pauses between creating its job and deferring.

The system test kills the task process (``kill -9``) inside that pause: a worker that dies
right after the job exists, before the task deferred. The pause is the only difference
from FinetuneOperator, and only the first try has it, so the retry shows what production
code does after such a crash.
"""

from __future__ import annotations

import os
import time
from datetime import timedelta
from typing import Any

import pendulum
from airflow.sdk import DAG

from airflow_predibase.operators import FinetuneOperator

POLL = float(os.environ.get("PREDIBASE_POLL_INTERVAL", "5"))
CRASH_WINDOW_SECONDS = 60.0


class FinetuneWithCrashWindow(FinetuneOperator):
    """FinetuneOperator that waits `crash_window` seconds before deferring, on try 1 only."""

    def __init__(self, *, crash_window: float, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.crash_window = crash_window
        self._first_try = False

    def execute(self, context: Any) -> Any:
        self._first_try = context["ti"].try_number == 1
        return super().execute(context)

    def _wait(self, current: Any, resource_id: str, deadline: float | None) -> Any:
        if self._first_try:
            self.log.info(
                "crash window: job %s exists; pausing %.0f s before deferring",
                resource_id,
                self.crash_window,
            )
            time.sleep(self.crash_window)
        return super()._wait(current, resource_id, deadline)


with DAG(
    "sys_worker_crash",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["predibase", "system-test"],
    default_args={"retries": 1, "retry_delay": timedelta(seconds=3)},
):
    FinetuneWithCrashWindow(
        task_id="finetune",
        base_model=os.environ.get("PREDIBASE_BASE_MODEL", "qwen3-8b"),
        dataset="tickets",
        repo="crash-router",
        predibase_conn_id="pb_worker_crash",
        poll_interval=POLL,
        deferrable=True,
        crash_window=CRASH_WINDOW_SECONDS,
    )
