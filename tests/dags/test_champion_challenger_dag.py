"""`dags_examples/predibase_champion_challenger.py` run for real with `airflow dags test`
against the emulator, three weeks in a row on one emulator and one Airflow home:

1. no champion yet: an adapter trained on a first, small week of tickets is scored against
   the base model, passes the absolute floor and is promoted;
2. the candidate loses: trained on the same tickets with their labels shuffled, it scores
   far below the champion, so `evaluate` and `promote` are skipped, the run succeeds and the
   champion stays;
3. the candidate wins: trained on all the tickets, it beats the first champion, is promoted,
   and retention archives the losing version while sparing the champion and the previous one.

Nothing is mocked: the emulator's adapters answer from what they were trained on
(docs/emulator.md, "Model behaviour"), so the scores are earned.
"""

from __future__ import annotations

import ast
import itertools
import json
import random
import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.dags.dagkit import (
    DAGS,
    airflow_env,
    dag_bag,
    dags_test,
    finish_migration,
    start_migration,
)

DAG_FILE = DAGS / "predibase_champion_challenger.py"
DAG_ID = "predibase_champion_challenger"
DATA = DAGS / "data" / "support_tickets.jsonl"
TOKEN = "pb_DAGTEST_SECRET_c1a2b3d4"
DEPLOYMENT = REPO = "support-router"
PATH = ["upload_training_data", "finetune", "deploy", "evaluate", "promote"]


def test_the_graph_is_the_one_its_docstring_draws():
    bag = dag_bag(DAG_FILE)
    assert bag.import_errors == {}
    dag = bag.dags[DAG_ID]
    drawing = " ".join((ast.get_docstring(ast.parse(DAG_FILE.read_text())) or "").split())
    drawing = re.sub(r" \([^)]*\)", "", drawing)
    assert " -> ".join([*PATH, "archive_old_versions"]) in drawing
    for upstream, downstream in itertools.pairwise([*PATH, "archive_old_versions"]):
        assert upstream in dag.get_task(downstream).upstream_task_ids, (upstream, downstream)
    assert dag.get_task("promote").trigger_rule == "all_success"
    assert dag.get_task("archive_old_versions").trigger_rule == "none_failed"
    assert dag.get_task("finetune").max_cost is not None


def weeks(directory: Path) -> dict[str, Path]:
    """Training files for three weeks, each with the same held-out rows as DATA."""
    rows = [json.loads(line) for line in DATA.read_text().splitlines() if line.strip()]
    train = [r for r in rows if r["split"] == "train"]
    held_out = [r for r in rows if r["split"] == "evaluation"]
    labels = [r["completion"] for r in train]
    random.Random(1).shuffle(labels)
    files = {
        # A first, small week: good, not perfect (label F1 about 0.88 on the held-out rows).
        "small": train[:32],
        # The same tickets with every label shuffled: the adapter learns nonsense.
        "shuffled": [{**r, "completion": label} for r, label in zip(train, labels, strict=True)],
        "full": train,
    }
    directory.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, training in files.items():
        paths[name] = directory / f"tickets-{name}.jsonl"
        paths[name].write_text("".join(json.dumps(r) + "\n" for r in training + held_out))
    return paths


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """An emulator with a distinctive token and a migrated private SQLite Airflow home."""
    from airflow_predibase.emulator.server import EmulatorServer

    home = tmp_path_factory.mktemp("airflow_home")
    with EmulatorServer(profile="fast", token=TOKEN) as emulator:
        env = airflow_env(home, emulator, PREDIBASE_EXAMPLES_WORKDIR=str(home / "work"))
        finish_migration(start_migration(env))
        yield {"emulator": emulator, "env": env, "home": home, "weeks": weeks(home / "data")}


def week(stack: dict[str, Any], training: str) -> dict[str, Any]:
    """`airflow dags test` on one week's training file; the run's task states and XComs."""
    conf = {"training_file": str(stack["weeks"][training])}
    output = dags_test(stack["env"], DAG_ID, conf, token=TOKEN)
    with sqlite3.connect(Path(stack["home"]) / "airflow.db") as db:
        [run_id] = db.execute(
            "SELECT run_id FROM dag_run WHERE dag_id = ? ORDER BY id DESC LIMIT 1", (DAG_ID,)
        ).fetchone()
        states = dict(
            db.execute(
                "SELECT task_id, state FROM task_instance WHERE dag_id = ? AND run_id = ?",
                (DAG_ID, run_id),
            ).fetchall()
        )
        xcoms = {
            (task_id, key): json.loads(value) if isinstance(value, str | bytes) else value
            for task_id, key, value in db.execute(
                "SELECT task_id, key, value FROM xcom WHERE dag_id = ? AND run_id = ?",
                (DAG_ID, run_id),
            ).fetchall()
        }
    return {"output": output, "states": states, "xcom": xcoms}


def served(stack: dict[str, Any]) -> list[str]:
    [deployment] = [d for d in stack["emulator"].admin.state()["deployments"]]
    assert deployment["name"] == DEPLOYMENT
    return list(deployment.get("preloaded_adapters") or [])


def versions(stack: dict[str, Any]) -> dict[int, bool]:
    """Version -> archived."""
    [repo] = stack["emulator"].admin.state()["repos"]
    return {v["version"]: bool(v.get("archived")) for v in repo["versions"]}


def test_week_1_with_no_champion_promotes_a_good_first_adapter(stack: dict[str, Any]):
    run = week(stack, "small")
    assert set(run["states"].values()) == {"success"}, run["states"]
    gate = run["xcom"][("evaluate", "evaluation")]
    assert gate["passed"] is True
    assert gate["baseline"] == {
        "kind": "base",
        "adapter": None,
        "scores": gate["baseline"]["scores"],
    }
    assert gate["baseline"]["scores"]["label_f1"] == 0.0
    assert 0.8 <= gate["candidate"]["scores"]["label_f1"] < 1.0
    assert run["xcom"][("finetune", "cost_estimate")] > 0  # asked before the job was created
    assert "estimated cost: $" in run["output"]
    assert run["xcom"][("promote", "return_value")]["action"] == "promoted"
    assert served(stack) == [f"{REPO}/1"]
    assert versions(stack) == {1: False}


def test_week_2_a_worse_candidate_is_not_promoted(stack: dict[str, Any]):
    run = week(stack, "shuffled")
    assert run["states"] == {
        "upload_training_data": "success",
        "finetune": "success",
        "deploy": "success",
        "evaluate": "skipped",
        "promote": "skipped",
        "archive_old_versions": "success",
    }
    gate = run["xcom"][("evaluate", "evaluation")]  # pushed before the skip
    assert gate["passed"] is False
    assert gate["candidate"]["adapter"] == f"{REPO}/2"
    assert gate["baseline"]["kind"] == "champion"
    assert gate["baseline"]["adapter"] == f"{REPO}/1"
    assert gate["candidate"]["scores"]["label_f1"] < gate["baseline"]["scores"]["label_f1"]
    assert gate["margin"] < 0
    assert ("promote", "return_value") not in run["xcom"]
    assert served(stack) == [f"{REPO}/1"]  # the champion is unchanged
    # The newest version is kept (keep_last=1), the champion protected: nothing archived.
    retention = run["xcom"][("archive_old_versions", "return_value")]
    assert (retention["kept"], retention["protected"]) == ([f"{REPO}/2"], [f"{REPO}/1"])
    assert versions(stack) == {1: False, 2: False}


def test_week_3_a_better_candidate_replaces_the_champion(stack: dict[str, Any]):
    run = week(stack, "full")
    assert set(run["states"].values()) == {"success"}, run["states"]
    gate = run["xcom"][("evaluate", "evaluation")]
    assert gate["passed"] is True
    assert gate["baseline"]["adapter"] == f"{REPO}/1"
    assert gate["candidate"]["scores"]["label_f1"] == 1.0
    assert gate["margin"] > 0
    promotion = run["xcom"][("promote", "return_value")]
    assert (promotion["action"], promotion["champion"], promotion["previous"]) == (
        "promoted",
        f"{REPO}/3",
        f"{REPO}/1",
    )
    assert served(stack) == [f"{REPO}/3", f"{REPO}/1"]  # the previous one kept for a rollback
    # The loser is archived; the champion and the previous champion are not.
    assert run["xcom"][("archive_old_versions", "return_value")]["archived"] == [f"{REPO}/2"]
    assert versions(stack) == {1: False, 2: True, 3: False}
    # One deployment all along: created in week 1, reused since.
    assert run["xcom"][("deploy", "return_value")]["action"] == "unchanged"
