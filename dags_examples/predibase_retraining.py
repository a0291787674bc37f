"""Weekly retraining: upload the data, fine-tune an adapter, deploy it, score it against the
base model on a held-out split, and always delete the deployment afterwards.

    upload_training_data -> finetune -> deploy (setup) -> smoke_test -> build_eval_batch
        -> upload_eval_batch -> score -+-> evaluate
                                       +-> delete_deployment (teardown of deploy)

The DAG is created paused: unpause it once the `predibase_default` connection exists.

Settings come from the environment so the same file runs against Predibase and the local
emulator: PREDIBASE_BASE_MODEL, PREDIBASE_POLL_INTERVAL (seconds), PREDIBASE_EXAMPLES_WORKDIR.
"""

from __future__ import annotations

import os
import tempfile
from datetime import timedelta
from pathlib import Path

import pendulum
from airflow.sdk import dag, task

from airflow_predibase.operators import (
    BatchInferenceOperator,
    CreateDatasetOperator,
    DeleteDeploymentOperator,
    DeployOperator,
    FinetuneOperator,
)

DATA = Path(__file__).parent / "data" / "support_tickets.jsonl"
BASE_MODEL = os.environ.get("PREDIBASE_BASE_MODEL", "qwen3-8b")
POLL = float(os.environ.get("PREDIBASE_POLL_INTERVAL", "30"))
WORKDIR = Path(os.environ.get("PREDIBASE_EXAMPLES_WORKDIR", tempfile.gettempdir()))
REPO = "support-router"
DEPLOYMENT = "support-router-eval"


@dag(
    schedule="@weekly",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["predibase", "example"],
    default_args={"retries": 1, "retry_delay": timedelta(seconds=10)},
    is_paused_upon_creation=True,
)
def predibase_retraining() -> None:
    upload_training_data = CreateDatasetOperator(
        task_id="upload_training_data",
        name="support-tickets",
        file=str(DATA),
        task="sft",
        poll_interval=POLL,
        deferrable=True,
    )

    finetune = FinetuneOperator(
        task_id="finetune",
        base_model=BASE_MODEL,
        dataset=upload_training_data.output,
        repo=REPO,
        adapter_type="lora",
        hyperparameters={"epochs": 3, "learning_rate": 0.0002, "rank": 16},
        timeout=timedelta(hours=6),
        poll_interval=POLL,
        deferrable=True,
    )

    deploy = DeployOperator(
        task_id="deploy",
        name=DEPLOYMENT,
        base_model=BASE_MODEL,
        accelerator="a10_24gb_100",
        min_replicas=0,
        max_replicas=1,
        cooldown_time=600,
        preloaded_adapters=["{{ ti.xcom_pull(task_ids='finetune') }}"],
        poll_interval=POLL,
        deferrable=True,
    )

    @task
    def smoke_test(adapter_id: str) -> str:
        """One real request through the deployment before spending on a batch job."""
        from airflow_predibase.client.models import ChatCompletionRequest, ChatMessage
        from airflow_predibase.hooks.predibase import PredibaseHook

        prompt = "Route this support ticket: my package has not arrived yet\nCategory:"
        reply = (
            PredibaseHook()
            .get_client()
            .chat_completion(
                DEPLOYMENT,
                ChatCompletionRequest(
                    model=adapter_id, messages=[ChatMessage(role="user", content=prompt)]
                ),
            )
        )
        answer = reply.choices[0].message.content
        print(f"adapter {adapter_id} answers: {answer!r}")
        return answer

    @task
    def build_eval_batch(adapter_id: str) -> str:
        """Held-out rows, each asked of the adapter and of the base model."""
        from airflow_predibase.evaluation import batch_rows, read_jsonl, write_jsonl

        held_out = [r for r in read_jsonl(DATA) if r.get("split") == "evaluation"]
        rows = batch_rows(held_out, {"adapter": adapter_id, "base": ""})
        path = WORKDIR / "predibase_retraining" / f"eval-{adapter_id.replace('/', '-')}.jsonl"
        return str(write_jsonl(path, rows))

    upload_eval_batch = CreateDatasetOperator(
        task_id="upload_eval_batch",
        name="support-tickets-eval-{{ ti.xcom_pull(task_ids='finetune') | replace('/', '-') }}",
        file="{{ ti.xcom_pull(task_ids='build_eval_batch') }}",
        task="batch",
        poll_interval=POLL,
        deferrable=True,
    )

    score = BatchInferenceOperator(
        task_id="score",
        base_model=BASE_MODEL,
        dataset=upload_eval_batch.output,
        results_path=str(
            WORKDIR / "predibase_retraining" / "results-{{ run_id | replace(':', '_') }}.jsonl"
        ),
        timeout=timedelta(hours=2),
        poll_interval=POLL,
        deferrable=True,
    )

    @task
    def evaluate(scored: dict) -> dict:
        """Exact-match accuracy of adapter and base model on the held-out split."""
        from airflow_predibase.evaluation import accuracy, read_jsonl

        held_out = [r for r in read_jsonl(DATA) if r.get("split") == "evaluation"]
        scores = accuracy(held_out, read_jsonl(scored["results_path"]), ["adapter", "base"])
        print(f"accuracy on {len(held_out)} held-out tickets: {scores}")
        return {**scores, "rows": scored["rows"], "job_id": scored["job_id"]}

    delete_deployment = DeleteDeploymentOperator(task_id="delete_deployment", name=DEPLOYMENT)

    adapter = finetune.output
    batch_file = build_eval_batch(adapter)
    finetune >> deploy >> smoke_test(adapter) >> batch_file
    batch_file >> upload_eval_batch
    evaluate(score.output)
    score >> delete_deployment.as_teardown(setups=deploy)


predibase_retraining()
