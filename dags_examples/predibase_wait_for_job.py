"""Wait for a fine-tuning job started elsewhere (a notebook, the console, another DAG),
then use its adapter. Trigger with conf ``{"job_id": "..."}``.

The DAG is created paused: unpause it once the `predibase_default` connection exists.
"""

from __future__ import annotations

import os
from typing import Any

import pendulum
from airflow.sdk import dag, task

from airflow_predibase.sensors import WaitForJobSensor

POLL = float(os.environ.get("PREDIBASE_POLL_INTERVAL", "30"))


@dag(
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["predibase", "example"],
    params={"job_id": ""},
    is_paused_upon_creation=True,
)
def predibase_wait_for_job() -> None:
    wait = WaitForJobSensor(
        task_id="wait_for_job",
        job_id="{{ params.job_id }}",
        job_type="finetuning_job",
        poke_interval=POLL,
        timeout=12 * 3600,
        deferrable=True,
    )

    @task
    def report(job: dict[str, Any]) -> str:
        adapter = f"{job['repo']}/{job['adapter_version']}"
        print(f"job {job['id']} finished: adapter {adapter}")
        return adapter

    report(wait.output)


predibase_wait_for_job()
