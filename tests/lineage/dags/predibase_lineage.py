"""Every Predibase operator in one run, for the OpenLineage test (tests/lineage/
test_emitted_events.py). The fine-tuning task fails its first try right after its job
exists, so the second try must re-attach to that job.

    upload -> finetune (crashes once) -> deploy -> build_batch -> upload_batch -> score
        -> delete_deployment (teardown of deploy)
"""

from __future__ import annotations

import json
import os
from datetime import timedelta
from pathlib import Path
from typing import Any

import pendulum
from airflow.sdk import dag, task

from airflow_predibase.operators import (
    BatchInferenceOperator,
    CreateDatasetOperator,
    DeleteDeploymentOperator,
    DeployOperator,
)
from airflow_predibase.operators.finetuning import FinetuneOperator

WORKDIR = Path(os.environ.get("PREDIBASE_LINEAGE_WORKDIR", "/tmp/predibase-lineage"))
BASE_MODEL = "qwen3-8b"
POLL = 0.5


class FinetuneCrashingOnce(FinetuneOperator):
    """Fails its first try once the job exists, as a worker lost mid-wait would."""

    def _publish(self, context: Any, *args: Any, **kwargs: Any) -> str:
        url: str = super()._publish(context, *args, **kwargs)
        if context["ti"].try_number == 1:
            raise RuntimeError("simulated: the worker was lost after the job was created")
        return url


@dag(schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC"), catchup=False)
def predibase_lineage() -> None:
    upload = CreateDatasetOperator(
        task_id="upload",
        name="tickets",
        file=str(WORKDIR / "tickets.jsonl"),
        poll_interval=POLL,
        deferrable=True,
    )
    finetune = FinetuneCrashingOnce(
        task_id="finetune",
        base_model=BASE_MODEL,
        dataset=upload.output,
        repo="router",
        hyperparameters={"epochs": 2, "rank": 8},
        poll_interval=POLL,
        deferrable=True,
        retries=1,
        retry_delay=timedelta(seconds=1),
    )
    deploy = DeployOperator(
        task_id="deploy",
        name="router-eval",
        base_model=BASE_MODEL,
        accelerator="a10_24gb",
        preloaded_adapters=["{{ ti.xcom_pull(task_ids='finetune') }}"],
        poll_interval=POLL,
        deferrable=True,
    )

    @task
    def build_batch(adapter_id: str) -> str:
        rows = [
            {
                "custom_id": f"{who}-{n}",
                "body": {"model": model, "messages": [{"role": "user", "content": f"ticket {n}"}]},
            }
            for n in range(3)
            for who, model in (("adapter", adapter_id), ("base", ""))
        ]
        path = WORKDIR / "batch.jsonl"
        path.write_text("".join(json.dumps(row) + "\n" for row in rows))
        return str(path)

    upload_batch = CreateDatasetOperator(
        task_id="upload_batch",
        name="eval",
        file="{{ ti.xcom_pull(task_ids='build_batch') }}",
        task="batch",
        poll_interval=POLL,
        deferrable=True,
    )
    score = BatchInferenceOperator(
        task_id="score",
        base_model=BASE_MODEL,
        dataset=upload_batch.output,
        results_path=str(WORKDIR / "results.jsonl"),
        poll_interval=POLL,
        deferrable=True,
    )
    delete = DeleteDeploymentOperator(task_id="delete_deployment", name="router-eval")

    finetune >> deploy >> build_batch(finetune.output) >> upload_batch
    score >> delete.as_teardown(setups=deploy)


predibase_lineage()
