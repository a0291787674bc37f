"""Score a dataset with the newest adapter, whenever a new adapter version is trained.

Scheduled on the adapter repository's Asset, which FinetuneOperator emits with the new
adapter ID in the event's extra. Also runnable by hand, with conf:
``{"adapter_id": "support-router/3", "file": "/path/to/prompts.jsonl"}`` (both optional:
the newest ready version and the sample's held-out split are the defaults).

The DAG is created paused: unpause it once the `predibase_default` connection exists.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import pendulum
from airflow.sdk import dag, task

from airflow_predibase.assets import adapter_asset
from airflow_predibase.operators import BatchInferenceOperator, CreateDatasetOperator

DATA = Path(__file__).parent / "data" / "support_tickets.jsonl"
BASE_MODEL = os.environ.get("PREDIBASE_BASE_MODEL", "qwen3-8b")
POLL = float(os.environ.get("PREDIBASE_POLL_INTERVAL", "30"))
WORKDIR = Path(os.environ.get("PREDIBASE_EXAMPLES_WORKDIR", tempfile.gettempdir()))
REPO = "support-router"


@dag(
    schedule=[adapter_asset(REPO)],
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["predibase", "example"],
    params={"adapter_id": None, "file": None},
    is_paused_upon_creation=True,
)
def predibase_triggered_scoring() -> None:
    @task
    def pick_adapter(**context: Any) -> str:
        """conf, else the triggering asset event, else the newest ready version."""
        from airflow_predibase.hooks.predibase import PredibaseHook

        if context["params"].get("adapter_id"):
            return str(context["params"]["adapter_id"])
        for events in (context.get("triggering_asset_events") or {}).values():
            for event in reversed(list(events)):
                if event.extra.get("adapter_id"):
                    return str(event.extra["adapter_id"])
        repo = PredibaseHook().get_client().get_repo(REPO)
        ready = [v for v in repo.versions if v.status.is_success and not v.archived]
        if not ready:
            raise ValueError(f"repository {REPO} has no ready adapter version to score with")
        return f"{REPO}/{max(v.version for v in ready)}"

    @task
    def build_batch(adapter_id: str, **context: Any) -> str:
        from airflow_predibase.evaluation import batch_rows, read_jsonl, write_jsonl

        source = context["params"].get("file") or DATA
        rows = [r for r in read_jsonl(source) if r.get("split", "evaluation") == "evaluation"]
        name = f"scoring-{adapter_id.replace('/', '-')}.jsonl"
        path = WORKDIR / "predibase_triggered_scoring" / name
        return str(write_jsonl(path, batch_rows(rows, {"adapter": adapter_id})))

    adapter_id = pick_adapter()
    batch_file = build_batch(adapter_id)

    upload = CreateDatasetOperator(
        task_id="upload_batch",
        name="scoring-{{ ti.xcom_pull(task_ids='pick_adapter') | replace('/', '-') }}",
        file=batch_file,
        task="batch",
        poll_interval=POLL,
        deferrable=True,
    )
    BatchInferenceOperator(
        task_id="score",
        base_model=BASE_MODEL,
        dataset=upload.output,
        results_path=str(
            WORKDIR
            / "predibase_triggered_scoring"
            / "results-{{ run_id | replace(':', '_') }}.jsonl"
        ),
        poll_interval=POLL,
        deferrable=True,
    )


predibase_triggered_scoring()
