"""The browser test's DAG: one deferred fine-tune, slow enough to log progress lines.

The emulator trains for about 20 s and the trigger polls every 3 s (never in the first
second: Airflow 3.3.2's fast-trigger race, apache/airflow #67287), so the task log shows
several ``step=... epoch=... loss=...`` lines. One retry, as every system DAG has.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import DAG

from airflow_predibase.operators import FinetuneOperator

with DAG(
    "ui_finetune",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["predibase", "ui-test"],
    default_args={"retries": 1, "retry_delay": timedelta(seconds=3)},
):
    FinetuneOperator(
        task_id="finetune",
        base_model="qwen3-8b",
        dataset="tickets",
        repo="ui-router",
        poll_interval=3,
        deferrable=True,
    )
