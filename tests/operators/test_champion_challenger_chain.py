"""The gate, promotion and retention as a DAG chains them, run task by task against the
real emulator as Airflow would: the candidate wins and is promoted; the candidate loses,
the promotion is skipped, retention still runs and spares the champion. The rollback
snippet of docs/operators/promote.md comes from here."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pendulum
import pytest
from airflow.providers.common.compat.sdk import AirflowSkipException
from airflow.sdk import DAG

from airflow_predibase.operators import (
    ArchiveAdapterVersionsOperator,
    EvaluateAdapterOperator,
    PromoteAdapterOperator,
)
from tests.operators.champion_kit import TICKETS, WRONG, deploy, train, write_eval
from tests.taskkit import make_context

DEPLOYMENT = "router"
REPO = "router"


def champion_challenger(adapter: Any, eval_file: str, results: str, poll: float = 30.0) -> DAG:
    """`adapter` is the candidate: in a DAG, `finetune.output`."""
    with DAG(
        "champion_challenger",
        schedule=None,
        start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    ) as dag:
        evaluate = EvaluateAdapterOperator(
            task_id="evaluate",
            adapter=adapter,
            deployment=DEPLOYMENT,
            dataset=eval_file,  # JSONL or CSV with prompt, completion; or an s3:// URL
            baseline="champion",  # what the deployment serves as champion; the base model at first
            metric="label_f1",
            min_score=0.8,  # absolute floor
            min_margin=0.0,  # and not worse than the champion
            on_fail="skip",  # a losing candidate skips the promotion instead of failing the run
            results_path=results,
        )
        promote = PromoteAdapterOperator(
            task_id="promote",
            deployment=DEPLOYMENT,
            adapter=adapter,
            poll_interval=poll,
        )
        archive_old_versions = ArchiveAdapterVersionsOperator(
            task_id="archive_old_versions",
            repo=REPO,
            keep_last=2,
            deployment=DEPLOYMENT,  # its champion and previous champion are never archived
            trigger_rule="none_failed",  # also after a skipped promotion
        )
        evaluate >> promote >> archive_old_versions
    return dag


def run(dag: DAG) -> dict[str, Any]:
    """Each task in order, as the scheduler would with these trigger rules: a skip skips
    `promote` (all_success) but not `archive_old_versions` (none_failed)."""
    outcome: dict[str, Any] = {}
    for task_id in ("evaluate", "promote", "archive_old_versions"):
        task = dag.get_task(task_id)
        upstream_skipped = any(outcome.get(t) == "skipped" for t in task.upstream_task_ids)
        if upstream_skipped and task.trigger_rule == "all_success":
            outcome[task_id] = "skipped"
            continue
        try:
            outcome[task_id] = task.execute(make_context(task_id=task_id))
        except AirflowSkipException:
            outcome[task_id] = "skipped"
    return outcome


def test_the_candidate_wins_and_is_promoted(emulator: Any, client: Any, tmp_path: Path):
    first = train(client, "wrong", WRONG)
    deploy()
    PromoteAdapterOperator(
        task_id="seed", deployment=DEPLOYMENT, adapter=first, poll_interval=0.05
    ).execute(make_context(task_id="seed"))
    candidate = train(client, "right", TICKETS)
    eval_file = str(write_eval(tmp_path / "eval.jsonl"))
    dag = champion_challenger(candidate, eval_file, str(tmp_path / "rows.jsonl"), poll=0.05)
    outcome = run(dag)
    assert outcome["evaluate"]["passed"] is True
    assert outcome["evaluate"]["baseline"]["adapter"] == first
    assert outcome["promote"]["action"] == "promoted"
    assert client.get_deployment(DEPLOYMENT).preloaded_adapters == [candidate, first]
    assert outcome["archive_old_versions"]["archived"] == []


def test_the_candidate_loses_and_nothing_is_promoted(emulator: Any, client: Any, tmp_path: Path):
    champion = train(client, "right", TICKETS)
    deploy()
    PromoteAdapterOperator(
        task_id="seed", deployment=DEPLOYMENT, adapter=champion, poll_interval=0.05
    ).execute(make_context(task_id="seed"))
    losers = [train(client, f"wrong{i}", WRONG) for i in range(3)]
    eval_file = str(write_eval(tmp_path / "eval.jsonl"))
    dag = champion_challenger(losers[-1], eval_file, str(tmp_path / "rows.jsonl"), poll=0.05)
    outcome = run(dag)
    assert outcome["evaluate"] == outcome["promote"] == "skipped"
    assert client.get_deployment(DEPLOYMENT).preloaded_adapters == [champion]
    # router/1 is the champion: older than the newest two, still never archived.
    assert champion == "router/1"
    assert outcome["archive_old_versions"]["protected"] == ["router/1"]
    assert outcome["archive_old_versions"]["archived"] == ["router/2"]
    assert client.get_adapter_version(REPO, 1).archived is False


@pytest.mark.parametrize("task_id", ["evaluate", "promote", "archive_old_versions"])
def test_the_dag_parses_with_a_templated_candidate(task_id: str):
    dag = champion_challenger("{{ ti.xcom_pull(task_ids='finetune') }}", "eval.jsonl", "rows.jsonl")
    assert dag.get_task(task_id)


def rollback_dag(poll: float = 30.0) -> DAG:
    with DAG(
        "champion_rollback",
        schedule=None,
        start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    ) as dag:
        rollback = PromoteAdapterOperator(
            task_id="rollback", deployment=DEPLOYMENT, rollback=True, poll_interval=poll
        )
        rollback.doc_md = "Serve the previous champion again."
    return dag


def test_a_rollback_dag_restores_the_previous_champion(emulator: Any, client: Any, tmp_path: Path):
    first, second = train(client, "right", TICKETS), train(client, "wrong", WRONG)
    deploy()
    for adapter in (first, second):
        PromoteAdapterOperator(
            task_id="seed", deployment=DEPLOYMENT, adapter=adapter, poll_interval=0.05
        ).execute(make_context(task_id="seed"))
    result = rollback_dag(poll=0.05).get_task("rollback").execute(make_context(task_id="rollback"))
    assert (result["action"], result["champion"], result["previous"]) == (
        "rolled_back",
        first,
        second,
    )
    assert client.get_deployment(DEPLOYMENT).preloaded_adapters == [first]
