"""Event-driven scoring on a real scheduler, dag-processor, triggerer and API server: the
example `predibase_new_adapter_scoring`, whose Asset is watched by NewAdapterVersionTrigger,
is started by an adapter version trained outside Airflow (a plain client fine-tune), and
scores it. After a triggerer restart the watcher fires the next version, never the old one.

A stack of its own (not a scenario of the shared campaign): it needs the scheduler to
create asset-triggered runs (`use_job_schedule`), which the campaign's stack turns off.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from airflow_predibase.client.models import FinetuningJobRequest, RepoRequest
from tests.system.harness import running_stack, wait_until
from tests.system.harness.stack import StackSettings

ROOT = Path(__file__).resolve().parents[2]
DAGS = [
    ROOT / "dags_examples" / "predibase_new_adapter_scoring.py",
    ROOT / "dags_examples" / "data",
]
DAG_ID = "predibase_new_adapter_scoring"
ASSET_URI = "predibase://adapter-versions/support-router"

pytestmark = pytest.mark.system


@pytest.fixture(scope="module")
def airflow() -> Iterator[tuple[Any, Any]]:
    settings = StackSettings(
        use_job_schedule=True,  # asset-triggered runs are created by the job schedule
        extra_env={"AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "3"},
    )
    with running_stack(
        DAGS,
        emulators={"predibase_default": {"profile": "fast"}},
        env={"PREDIBASE_POLL_INTERVAL": "5", "PREDIBASE_WATCH_INTERVAL": "1"},
        settings=settings,
    ) as (stack, emulators):
        stack.wait_for_dags([DAG_ID])
        yield stack, emulators["predibase_default"]


def asset_events(stack: Any) -> list[dict[str, Any]]:
    rows = stack.sql(
        "SELECT e.extra FROM asset_event e JOIN asset a ON a.id = e.asset_id "
        "WHERE a.uri = :uri ORDER BY e.id",
        uri=ASSET_URI,
    )
    return [json.loads(r["extra"]) if isinstance(r["extra"], str) else r["extra"] for r in rows]


def watermark(stack: Any) -> list[dict[str, Any]]:
    return stack.sql(
        "SELECT s.value FROM asset_state_store s JOIN asset a ON a.id = s.asset_id "
        "WHERE a.uri = :uri",
        uri=ASSET_URI,
    )


def dag_runs(stack: Any) -> list[dict[str, Any]]:
    runs: list[dict[str, Any]] = stack.rest("GET", f"/dags/{DAG_ID}/dagRuns")["dag_runs"]
    return sorted(runs, key=lambda r: r["run_after"])


def train(client: Any) -> None:
    client.create_finetuning_job(
        FinetuningJobRequest(base_model="qwen3-8b", dataset="tickets", repo="support-router")
    )


def test_a_version_trained_outside_airflow_starts_the_scoring_dag_once(
    airflow: tuple[Any, Any],
) -> None:
    stack, emulator = airflow
    client = emulator.client()
    client.upload_dataset(
        "tickets", (ROOT / "dags_examples/data/support_tickets.jsonl").read_bytes(), "t.jsonl"
    )
    wait_until(lambda: client.get_dataset("tickets").status.is_terminal, 30, "the dataset")
    client.create_repo(RepoRequest(name="support-router"))

    # The example starts paused; a watcher runs only for the Assets of unpaused DAGs.
    stack.rest("PATCH", f"/dags/{DAG_ID}", json={"is_paused": False})
    wait_until(lambda: watermark(stack), 90, "the watcher's first poll (its watermark)")

    train(client)  # a notebook trains an adapter: no Airflow involved
    wait_until(lambda: len(dag_runs(stack)) == 1, 90, "the asset-triggered run")
    [run] = dag_runs(stack)
    assert run["run_type"] == "asset_triggered", run
    assert stack.wait_for_run(DAG_ID, run["dag_run_id"], timeout=180) == "success"
    assert stack.xcom(DAG_ID, run["dag_run_id"], "new_adapters") == ["support-router/1"]
    assert stack.xcom(DAG_ID, run["dag_run_id"], "report") == {"support-router/1": 1.0}

    # A triggerer restart: the new triggerer's watcher reads the watermark back and does
    # not fire r/1 again; the next version fires once.
    stack.stop_component("triggerer")
    stack.start_component("triggerer")
    train(client)
    wait_until(lambda: len(asset_events(stack)) >= 2, 120, "the second version's event")
    wait_until(lambda: len(dag_runs(stack)) == 2, 60, "the second asset-triggered run")
    payloads = [e["payload"]["adapter_id"] for e in asset_events(stack)]
    assert payloads == ["support-router/1", "support-router/2"]
    second = dag_runs(stack)[1]["dag_run_id"]
    stack.wait_for_task_state(DAG_ID, second, "new_adapters", {"success"}, timeout=60)
    assert stack.xcom(DAG_ID, second, "new_adapters") == ["support-router/2"]
    assert [e["payload"]["adapter_id"] for e in asset_events(stack)] == payloads
    for run in dag_runs(stack):
        for ti in stack.task_instances(DAG_ID, run["dag_run_id"]):
            if ti["try_number"] > 1:  # never hide a retry
                print(f"retry used: {ti['task_id']} try_number={ti['try_number']}")
