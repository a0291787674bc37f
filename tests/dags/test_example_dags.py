"""Every example DAG imports cleanly and runs to success with `airflow dags test` against
the emulator, as a user would run it; no task log contains the token."""

from __future__ import annotations

import ast
import itertools
import re
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest

from tests.dags.dagkit import AIRFLOW, DAGS, airflow_env, dag_bag, finish_migration, start_migration
from tests.dags.dagkit import dags_test as dags_test_run

TOKEN = "pb_DAGTEST_SECRET_7f3a91c2"


def test_every_example_dag_imports_without_errors():
    bag = dag_bag(DAGS)
    assert bag.import_errors == {}
    assert set(bag.dag_ids) == {
        "predibase_champion_challenger",  # run by test_champion_challenger_dag.py
        "predibase_new_adapter_scoring",  # run by test_new_adapter_scoring_dag.py
        "predibase_retraining",
        "predibase_triggered_scoring",
        "predibase_wait_for_job",
    }
    for dag in bag.dags.values():
        assert "predibase" in dag.tags
        # A fresh deployment must not start a run before the connection exists.
        assert dag.is_paused_upon_creation is True, dag.dag_id


def test_retraining_graph_is_the_one_its_docstring_draws():
    dag = dag_bag(DAGS / "predibase_retraining.py").dags["predibase_retraining"]
    path = [
        "upload_training_data",
        "finetune",
        "deploy",
        "smoke_test",
        "build_eval_batch",
        "upload_eval_batch",
        "score",
        "evaluate",
    ]
    source = (DAGS / "predibase_retraining.py").read_text()
    drawing = " ".join((ast.get_docstring(ast.parse(source)) or "").split())
    drawing = re.sub(r" \([^)]*\)", "", drawing).replace("-+->", "->")
    assert " -> ".join(path) in drawing
    assert "+-> delete_deployment" in drawing
    for upstream, downstream in itertools.pairwise(path):
        assert upstream in dag.get_task(downstream).upstream_task_ids, (upstream, downstream)
    assert dag.get_task("deploy").is_setup
    teardown = dag.get_task("delete_deployment")
    assert teardown.is_teardown
    assert teardown.upstream_task_ids == {"deploy", "score"}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """An emulator with a distinctive token and a migrated private SQLite Airflow home."""
    from airflow_predibase.emulator.server import EmulatorServer

    home = tmp_path_factory.mktemp("airflow_home")
    with EmulatorServer(profile="fast", token=TOKEN) as emulator:
        env = airflow_env(home, emulator, PREDIBASE_EXAMPLES_WORKDIR=str(home / "work"))
        finish_migration(start_migration(env))
        yield {"emulator": emulator, "env": env, "home": home, "outputs": []}


def dags_test(stack: dict[str, Any], dag_id: str, conf: dict[str, Any] | None = None) -> str:
    output = dags_test_run(stack["env"], dag_id, conf, token=TOKEN)
    stack["outputs"].append(output)
    return output


def test_retraining_dag_runs_end_to_end(stack: dict[str, Any]):
    output = dags_test(stack, "predibase_retraining")
    state = stack["emulator"].admin.state()
    assert state["counts"]["finetuning_jobs"] == 1
    assert state["counts"]["batch_jobs"] == 1
    assert state["counts"]["datasets"] == 2  # the training data and the eval batch
    assert state["deployments"] == []  # the teardown deleted it
    [repo] = state["repos"]
    assert [v["version"] for v in repo["versions"]] == [1]
    assert "accuracy on 60 held-out tickets" in output
    assert "'adapter': 1.0" in output


def test_triggered_scoring_dag_scores_with_the_newest_adapter(stack: dict[str, Any]):
    before = stack["emulator"].admin.state()["counts"]["batch_jobs"]
    output = dags_test(stack, "predibase_triggered_scoring")
    assert "support-router/1" in output
    assert stack["emulator"].admin.state()["counts"]["batch_jobs"] == before + 1


def test_wait_for_job_dag_follows_a_job_started_elsewhere(stack: dict[str, Any]):
    [job] = stack["emulator"].admin.state()["finetuning_jobs"]
    output = dags_test(stack, "predibase_wait_for_job", {"job_id": job["id"]})
    assert f"job {job['id']} finished: adapter support-router/1" in output


def test_no_log_of_any_run_contains_the_token(stack: dict[str, Any]):
    """`dags test` writes the task logs to its console (unmasked): the token must simply
    never be logged. Log files, where a run writes any, are checked too."""
    assert len(stack["outputs"]) == 3, "runs after the DAG tests above"
    task_logs = "\n".join(stack["outputs"])
    assert "Predibase fine-tuning job" in task_logs  # the operators' own lines are there
    assert "deferring: waiting for" in task_logs
    assert TOKEN not in task_logs
    for path in (stack["home"] / "logs").rglob("*"):
        if path.is_file():
            assert TOKEN not in path.read_text(errors="replace"), path


def test_a_missing_connection_fails_naming_it_and_how_to_add_it(stack: dict[str, Any]):
    """A fresh deployment without `predibase_default`: the first task that needs Predibase
    fails with a message a user can act on, not Airflow's bare "isn't defined"."""
    env = {k: v for k, v in stack["env"].items() if k != "AIRFLOW_CONN_PREDIBASE_DEFAULT"}
    done = subprocess.run(
        [AIRFLOW, "dags", "test", "predibase_wait_for_job", "--conf", '{"job_id": "any"}'],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    output = done.stdout + done.stderr
    assert done.returncode != 0, output[-8000:]
    assert "The Predibase connection 'predibase_default' is not defined" in output, output[-8000:]
    assert "AIRFLOW_CONN_PREDIBASE_DEFAULT=" in output
    assert "airflow connections add predibase_default --conn-type predibase" in output
