"""Fine-tune DAGs of the Celery campaign (tests/system/celery), one connection per scenario.

Kept apart from tests/system/dags so that the LocalExecutor campaigns do not parse them.
Polls every 5 s (``PREDIBASE_POLL_INTERVAL``) and one retry per task: the workaround for
Airflow 3.3.2's fast-trigger race (apache/airflow #67287, #71580, #72716); the test reports
every retry.
"""

from __future__ import annotations

import os
from datetime import timedelta

import pendulum
from airflow.sdk import DAG

from airflow_predibase.operators import FinetuneOperator

POLL = float(os.environ.get("PREDIBASE_POLL_INTERVAL", "5"))
BASE_MODEL = os.environ.get("PREDIBASE_BASE_MODEL", "qwen3-8b")
MAPPED = 50


def _dag(dag_id: str, doc: str) -> DAG:
    return DAG(
        dag_id,
        schedule=None,
        start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
        catchup=False,
        doc_md=doc,
        tags=["predibase", "system-test", "celery"],
        default_args={"retries": 1, "retry_delay": timedelta(seconds=3)},
    )


with _dag("sys_celery_triggerer_failover", "Its triggerer is SIGKILLed while it waits."):
    FinetuneOperator(
        task_id="finetune",
        base_model=BASE_MODEL,
        dataset="tickets",
        repo="failover-router",
        predibase_conn_id="pb_celery_failover",
        poll_interval=POLL,
        deferrable=True,
    )

with _dag("sys_celery_worker_crash", "Its Celery worker is SIGKILLed while it blocks."):
    FinetuneOperator(
        task_id="finetune",
        base_model=BASE_MODEL,
        dataset="tickets",
        repo="worker-crash-router",
        predibase_conn_id="pb_celery_worker_crash",
        poll_interval=POLL,
        deferrable=False,
    )

with _dag("sys_celery_mapped", f"{MAPPED} mapped deferrable fine-tunes, one repo each."):
    FinetuneOperator.partial(
        task_id="finetune",
        base_model=BASE_MODEL,
        dataset="tickets",
        predibase_conn_id="pb_celery_mapped",
        poll_interval=POLL,
        deferrable=True,
    ).expand(repo=[f"mapped-router-{i}" for i in range(MAPPED)])
