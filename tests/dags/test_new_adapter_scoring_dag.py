"""`dags_examples/predibase_new_adapter_scoring.py`: its Asset is watched by the event
trigger, a run reads the versions the watcher's events name, and it runs to success with
`airflow dags test` against the emulator on an adapter trained outside Airflow.

The watcher itself, firing in a real triggerer and starting this DAG, is tested on a real
Airflow in tests/system/test_adapter_watcher.py."""

from __future__ import annotations

import time
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest

from tests.dags.dagkit import DAGS, airflow_env, dag_bag, finish_migration, start_migration
from tests.dags.dagkit import dags_test as dags_test_run

DAG_FILE = DAGS / "predibase_new_adapter_scoring.py"
DAG_ID = "predibase_new_adapter_scoring"
TOKEN = "pb_DAGTEST_SECRET_4b1d0e77"


def scoring_dag() -> Any:
    bag = dag_bag(DAG_FILE)
    assert bag.import_errors == {}
    return bag.dags[DAG_ID]


def test_the_dag_is_scheduled_on_an_asset_the_event_trigger_watches():
    from airflow_predibase.triggers.adapter_versions import NewAdapterVersionTrigger

    dag = scoring_dag()
    [asset] = dag.timetable.asset_condition.objects
    assert asset.uri == "predibase://adapter-versions/support-router"
    [watcher] = asset.watchers
    trigger = watcher.trigger
    assert isinstance(trigger, NewAdapterVersionTrigger)
    assert (trigger.repo, trigger.predibase_conn_id) == ("support-router", "predibase_default")
    # Not FinetuneOperator's Asset: an adapter trained by a DAG must not start two runs.
    from airflow_predibase.assets import adapter_asset

    assert asset.uri != adapter_asset("support-router").uri


def test_a_run_scores_every_version_its_triggering_events_name_once_in_order():
    pick = scoring_dag().get_task("new_adapters").python_callable

    def event(version: int) -> Any:
        payload = {"adapter_id": f"support-router/{version}", "version": version}
        return SimpleNamespace(extra={"from_trigger": True, "payload": payload})

    events = {"asset": [event(3), event(2), event(3)]}
    context = {"params": {"adapter_id": None}, "triggering_asset_events": events}
    assert pick(**context) == ["support-router/2", "support-router/3"]
    by_hand = {"params": {"adapter_id": "support-router/7"}, "triggering_asset_events": events}
    assert pick(**by_hand) == ["support-router/7"]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """An emulator holding an adapter trained outside Airflow, and a migrated Airflow home."""
    from airflow_predibase.client import PredibaseClient
    from airflow_predibase.client.models import FinetuningJobRequest, RepoRequest
    from airflow_predibase.client.settings import ClientSettings
    from airflow_predibase.emulator.server import EmulatorServer

    home = tmp_path_factory.mktemp("airflow_home")
    with EmulatorServer(profile="fast", token=TOKEN) as emulator:
        env = airflow_env(home, emulator)
        migration = start_migration(env)
        # Meanwhile, a notebook trains an adapter: a plain client, no Airflow.
        settings = ClientSettings(
            token=emulator.token,
            base_url=emulator.control_url,
            serving_url=emulator.serving_url,
            tenant_id=emulator.tenant,
        )
        with PredibaseClient(settings) as client:
            client.upload_dataset(
                "tickets", (DAGS / "data" / "support_tickets.jsonl").read_bytes(), "tickets.jsonl"
            )
            while client.get_dataset("tickets").status != "connected":
                time.sleep(0.1)
            client.create_repo(RepoRequest(name="support-router"))
            client.create_finetuning_job(
                FinetuningJobRequest(
                    base_model="qwen3-8b", dataset="tickets", repo="support-router"
                )
            )
            while not client.get_adapter_version("support-router", 1).status.is_success:
                time.sleep(0.1)
        finish_migration(migration)
        yield {"emulator": emulator, "env": env, "home": home}


def dags_test(stack: dict[str, Any], conf: dict[str, Any] | None = None) -> str:
    return dags_test_run(stack["env"], DAG_ID, conf, token=TOKEN)


def test_the_dag_scores_the_newest_adapter_trained_outside_airflow(stack: dict[str, Any]):
    output = dags_test(stack)
    assert "accuracy on 5 held-out tickets: {'support-router/1': 1.0}" in output
    state = stack["emulator"].admin.state()
    assert state["deployments"] == []  # the teardown deleted it
    assert state["counts"]["finetuning_jobs"] == 1  # scoring trains nothing


def test_the_dag_scores_the_adapter_named_in_conf(stack: dict[str, Any]):
    output = dags_test(stack, {"adapter_id": "support-router/1"})
    assert "accuracy on 5 held-out tickets: {'support-router/1': 1.0}" in output
