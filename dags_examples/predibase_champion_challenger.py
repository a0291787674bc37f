"""Weekly champion/challenger: train a candidate adapter within a budget, score it against
the adapter in production on the same held-out tickets, promote it only if it is at least as
good, and archive old versions.

    upload_training_data -> finetune (max_cost) -> deploy (create or reuse) -> evaluate
        -> promote (skipped when the candidate loses) -> archive_old_versions

- **The champion** is what the serving deployment `support-router` preloads first (see
  docs/operators/promote.md). `evaluate` reads it, `promote` changes it, and
  `archive_old_versions` never touches it or the previous champion (kept for a rollback).
- **The gate**: macro F1 over the four categories on the held-out split of
  data/support_tickets.jsonl, the same tickets every week so scores compare. The candidate
  must reach `min_score` and not be worse than the champion. A losing candidate skips the
  promotion (`on_fail="skip"`): the run succeeds, the champion stays, retention still runs.
- **The first run** finds no champion: the candidate is compared with the base model
  (`baseline="champion"` falls back to it) and `min_score` is the real bar, so the first
  adapter is promoted only if it is good in absolute terms.
- **The budget**: `max_cost` makes the fine-tuning step ask the platform's cost estimate and
  log it; a job estimated over budget is never created and the task fails, not retried.
- **Nothing here is temporary.** The deployment serves the champion between runs, so it has
  no teardown; `deploy` only creates it on the first run (and deletes what it created if
  that fails) and reuses it afterwards, leaving its adapters alone. A losing candidate stays
  in the repository, findable, until retention archives it (archived weights are kept and
  can be unarchived). The per-example scores go to PREDIBASE_EXAMPLES_WORKDIR.

Conf ``{"training_file": "s3://bucket/tickets-2026-w14.jsonl"}`` trains on another file
(JSONL with prompt, completion; any path or URL Airflow's object storage reads).

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
from airflow.sdk import dag

from airflow_predibase.operators import (
    ArchiveAdapterVersionsOperator,
    CreateDatasetOperator,
    DeployOperator,
    EvaluateAdapterOperator,
    FinetuneOperator,
    PromoteAdapterOperator,
)

DATA = Path(__file__).parent / "data" / "support_tickets.jsonl"
BASE_MODEL = os.environ.get("PREDIBASE_BASE_MODEL", "qwen3-8b")
POLL = float(os.environ.get("PREDIBASE_POLL_INTERVAL", "30"))
WORKDIR = Path(os.environ.get("PREDIBASE_EXAMPLES_WORKDIR", tempfile.gettempdir()))
REPO = "support-router"
DEPLOYMENT = "support-router"


@dag(
    schedule="@weekly",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["predibase", "example"],
    default_args={"retries": 1, "retry_delay": timedelta(seconds=10)},
    params={"training_file": str(DATA)},
    is_paused_upon_creation=True,
)
def predibase_champion_challenger() -> None:
    upload_training_data = CreateDatasetOperator(
        task_id="upload_training_data",
        name="support-tickets-weekly",
        file="{{ params.training_file }}",
        task="sft",
        if_exists="version",  # new content each week: support-tickets-weekly-v2, -v3, ...
        poll_interval=POLL,
        deferrable=True,
    )

    finetune = FinetuneOperator(
        task_id="finetune",
        base_model=BASE_MODEL,
        dataset=upload_training_data.output,
        repo=REPO,
        hyperparameters={"epochs": 3, "learning_rate": 0.0002, "rank": 16},
        max_cost=25.0,  # US dollars: a job estimated above it is never created
        timeout=timedelta(hours=6),
        poll_interval=POLL,
        deferrable=True,
    )

    # After the fine-tuning, so a job refused by the budget spins nothing up. No
    # preloaded_adapters: which adapters it serves is the promotion's business.
    deploy = DeployOperator(
        task_id="deploy",
        name=DEPLOYMENT,
        base_model=BASE_MODEL,
        accelerator="a10_24gb_100",
        min_replicas=0,
        max_replicas=1,
        cooldown_time=3600,
        poll_interval=POLL,
        deferrable=True,
    )

    adapter = finetune.output

    evaluate = EvaluateAdapterOperator(
        task_id="evaluate",
        adapter=adapter,
        deployment=DEPLOYMENT,
        dataset=str(DATA),  # its split=evaluation rows: tickets no adapter was trained on
        baseline="champion",  # what the deployment serves as champion; the base model at first
        metric="label_f1",
        min_score=0.8,  # absolute floor
        min_margin=0.0,  # and not worse than the champion
        on_fail="skip",  # a losing candidate skips the promotion instead of failing the run
        results_path=str(
            WORKDIR / "predibase_champion_challenger" / "{{ run_id | replace(':', '_') }}.jsonl"
        ),
    )

    promote = PromoteAdapterOperator(
        task_id="promote",
        deployment=DEPLOYMENT,
        adapter=adapter,
        poll_interval=POLL,
        deferrable=True,
    )

    archive_old_versions = ArchiveAdapterVersionsOperator(
        task_id="archive_old_versions",
        repo=REPO,
        keep_last=1,  # the newest version, whether it won or not
        deployment=DEPLOYMENT,  # its champion and previous champion are never archived
        trigger_rule="none_failed",  # also after a skipped promotion
    )

    upload_training_data >> finetune >> deploy >> evaluate >> promote >> archive_old_versions


predibase_champion_challenger()
