"""Fine-tune DAGs for the system tests (tests/system/test_system.py), one per scenario.

Each DAG talks to its own emulator through its own connection (``pb_<scenario>``), so a
scenario's faults and timings never reach another's, and the emulator's counts belong to
that scenario alone. The test uploads the ``tickets`` datasets before triggering a run.

Poll intervals are 5 s (``PREDIBASE_POLL_INTERVAL``), so a trigger's first poll comes 5 s
after deferral, and every task has one retry: together the workaround for Airflow 3.3.2's
fast-trigger race (apache/airflow #67287, #71580, #72716). The test reports any retry.
"""

from __future__ import annotations

import os
from datetime import timedelta

import pendulum
from airflow.sdk import DAG

from airflow_predibase.operators import FinetuneOperator

POLL = float(os.environ.get("PREDIBASE_POLL_INTERVAL", "5"))
BASE_MODEL = os.environ.get("PREDIBASE_BASE_MODEL", "qwen3-8b")
DEADLINE_SECONDS = 10.0
MAPPED_DATASETS = [f"tickets-{i}" for i in range(10)]


def _dag(dag_id: str, doc: str) -> DAG:
    return DAG(
        dag_id,
        schedule=None,
        start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
        catchup=False,
        doc_md=doc,
        tags=["predibase", "system-test"],
        default_args={"retries": 1, "retry_delay": timedelta(seconds=3)},
    )


def _finetune(conn_id: str, repo: str, **kwargs: object) -> FinetuneOperator:
    options: dict[str, object] = {
        "task_id": "finetune",
        "base_model": BASE_MODEL,
        "dataset": "tickets",
        "repo": repo,
        "predibase_conn_id": conn_id,
        "poll_interval": POLL,
        "deferrable": True,
    }
    options.update(kwargs)
    return FinetuneOperator(**options)  # type: ignore[arg-type]


with _dag("sys_triggerer_restart", "The triggerer is killed while this fine-tune is waited on."):
    _finetune("pb_restart", "restart-router")

with _dag(
    "sys_mark_failed", "Marked failed while deferred: the trigger's on_kill cancels the job."
):
    _finetune("pb_mark_failed", "mark-failed-router")

with _dag("sys_clear", "Cleared after success: a new job (rerun_on_clear=True, the default)."):
    _finetune("pb_clear", "clear-router")

with _dag(
    "sys_clear_deferred", "Cleared while deferred: the job keeps running, the retry re-attaches."
):
    _finetune("pb_clear_deferred", "clear-deferred-router")

with _dag("sys_deadline", "A job that never finishes, and a short timeout: fails, job cancelled."):
    _finetune("pb_deadline", "deadline-router", timeout=timedelta(seconds=DEADLINE_SECONDS))

with _dag("sys_create_dropped", "The create response is lost and the worker dies in the lookup."):
    _finetune("pb_create_dropped", "dropped-router")

with _dag("sys_mapped_finetunes", "Ten mapped fine-tunes, one per dataset, waited on together."):
    FinetuneOperator.partial(
        task_id="finetune",
        base_model=BASE_MODEL,
        repo="mapped-router",
        predibase_conn_id="pb_mapped",
        poll_interval=POLL,
        deferrable=True,
    ).expand(dataset=MAPPED_DATASETS)
