"""`make demo`: the retraining DAG, then two weeks of the champion/challenger DAG, end to end
against a local Predibase emulator.

Starts the emulator, points the `predibase_default` connection at it, migrates a private
SQLite Airflow home under .demo/, runs `airflow dags test predibase_retraining` and prints a
summary; then runs `predibase_champion_challenger` twice: a first week on the sample tickets
(no champion yet: the candidate is scored against the base model and promoted), and a second
week on the same tickets with their labels shuffled (the candidate loses to the champion and
is not promoted). For each it prints the cost estimate, the gate's scores and decision, the
promotion and the retention. Then it stops the emulator. Nothing outside .demo/ is touched.
"""

from __future__ import annotations

import json
import os
import random
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / ".demo"
DAG_ID = "predibase_retraining"
GATE_DAG_ID = "predibase_champion_challenger"
DATA = ROOT / "dags_examples" / "data" / "support_tickets.jsonl"


def airflow_env(connection_json: str) -> dict[str, str]:
    home = DEMO / "airflow"
    home.mkdir(parents=True, exist_ok=True)
    return {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags_examples"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW_CONN_PREDIBASE_DEFAULT": connection_json,
        "PREDIBASE_POLL_INTERVAL": "0.5",
        "PREDIBASE_EXAMPLES_WORKDIR": str(DEMO / "work"),
    }


def run(cmd: list[str], env: dict[str, str], log: Path) -> None:
    with log.open("w") as out:
        done = subprocess.run(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, check=False)
    if done.returncode != 0:
        print(log.read_text()[-6000:])
        sys.exit(f"`{' '.join(cmd[1:])}` failed (exit {done.returncode}); full log: {log}")


def latest_run(env: dict[str, str], dag_id: str) -> dict[str, Any]:
    """The task states and XComs of `dag_id`'s newest run, straight from the SQLite DB."""
    db = Path(env["AIRFLOW_HOME"]) / "airflow.db"
    newest = "(SELECT run_id FROM dag_run WHERE dag_id = ? ORDER BY id DESC LIMIT 1)"
    with sqlite3.connect(db) as conn:
        xcoms = conn.execute(
            f"SELECT task_id, key, value FROM xcom WHERE dag_id = ? AND run_id = {newest}",
            (dag_id, dag_id),
        ).fetchall()
        states = conn.execute(
            f"SELECT task_id, state FROM task_instance WHERE dag_id = ? AND run_id = {newest}",
            (dag_id, dag_id),
        ).fetchall()
    values: dict[str, dict[str, Any]] = {}
    for task_id, key, value in xcoms:
        decoded = json.loads(value) if isinstance(value, str | bytes) else value
        values.setdefault(key, {})[task_id] = decoded
    return {"xcom": values, "states": dict(states)}


def return_values(env: dict[str, str]) -> dict[str, Any]:
    """The XCom return values of the retraining DAG's newest run."""
    result: dict[str, Any] = latest_run(env, DAG_ID)["xcom"].get("return_value", {})
    return result


def shuffled_labels(path: Path) -> Path:
    """The sample tickets with the training rows' labels shuffled: a bad week's data."""
    rows = [json.loads(line) for line in DATA.read_text().splitlines() if line.strip()]
    train = [r for r in rows if r.get("split") != "evaluation"]
    labels = [r["completion"] for r in train]
    random.Random(1).shuffle(labels)
    for row, label in zip(train, labels, strict=True):
        row["completion"] = label
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def summary(state: dict[str, Any], results: dict[str, Any], seconds: float) -> str:
    [job] = state["finetuning_jobs"]
    evaluation = results.get("evaluate") or {}
    deployed = results.get("deploy") or {}
    lines = [
        "",
        f"predibase_retraining succeeded in {seconds:.1f} s against the local emulator",
        f"  datasets        {', '.join(d['name'] for d in state['datasets'])}",
        f"  fine-tuning job {job['id']} ({job['status']})",
        f"  adapter         {results.get('finetune')}",
        f"  deployment      {deployed.get('name')} ({deployed.get('action')}; "
        f"deleted by the teardown: {not state['deployments']})",
        f"  rows scored     {evaluation.get('rows')} (batch job {evaluation.get('job_id')})",
        f"  accuracy        adapter {evaluation.get('adapter', 0):.0%}  vs  "
        f"base model {evaluation.get('base', 0):.0%}",
        f"  logs            {DEMO / 'dags_test.log'}",
    ]
    return "\n".join(lines)


def gate_summary(title: str, run: dict[str, Any], seconds: float) -> str:
    """What one champion/challenger run decided, and on what."""
    xcom, states = run["xcom"], run["states"]
    gate = xcom.get("evaluation", {}).get("evaluate") or {}
    training = xcom.get("training_summary", {}).get("finetune") or {}
    estimate = xcom.get("cost_estimate", {}).get("finetune")
    promotion = xcom.get("return_value", {}).get("promote")
    retention = xcom.get("return_value", {}).get("archive_old_versions") or {}
    candidate, baseline = gate.get("candidate") or {}, gate.get("baseline") or {}
    metric = gate.get("metric", "label_f1")
    against = baseline.get("adapter") or "the base model"
    if baseline.get("kind") == "champion":
        against = f"the champion {against}"
    cost = "none (no estimate)" if estimate is None else f"${estimate:.2f} (max_cost $25.00)"
    if training.get("wall_seconds") is not None:
        cost += f"; trained in {training['wall_seconds']:.1f} s"
    decision = "PASSED" if gate.get("passed") else "DID NOT PASS"
    lines = [
        "",
        f"{GATE_DAG_ID}, {title}: succeeded in {seconds:.1f} s",
        f"  cost estimate   {cost}",
        f"  candidate       {xcom.get('return_value', {}).get('finetune')}",
        f"  {metric:<15} candidate {candidate.get('scores', {}).get(metric, 0):.2f}  vs  "
        f"{against} {baseline.get('scores', {}).get(metric, 0):.2f} "
        f"(margin {gate.get('margin', 0):+.2f}; min_score {gate.get('min_score')})",
        f"  gate            {decision}" + "".join(f"; {r}" for r in gate.get("reasons", [])),
    ]
    if promotion:
        lines.append(
            f"  promote         {promotion['action']}: champion {promotion['champion']} "
            f"(previous {promotion['previous'] or 'none'})"
        )
    else:
        lines.append(f"  promote         {states.get('promote')}: the champion is unchanged")
    lines.append(
        f"  retention       kept {retention.get('kept')}, protected {retention.get('protected')}"
        f", archived {retention.get('archived')}"
    )
    return "\n".join(lines)


def run_dag(
    airflow: str, env: dict[str, str], dag_id: str, log: Path, conf: dict[str, Any] | None = None
) -> float:
    print(f"running `airflow dags test {dag_id}`" + (f" with conf {conf}" if conf else "") + " ...")
    started = time.monotonic()
    cmd = [airflow, "dags", "test", dag_id]
    if conf:
        cmd += ["--conf", json.dumps(conf)]
    run(cmd, env, log)
    return time.monotonic() - started


def main() -> None:
    from airflow_predibase.emulator.server import EmulatorServer

    DEMO.mkdir(exist_ok=True)
    airflow = str(Path(sys.executable).with_name("airflow"))
    with EmulatorServer(profile="fast") as emulator:
        print(f"emulator on {emulator.url} (tenant {emulator.tenant}, profile fast)")
        env = airflow_env(emulator.connection_json())
        print("migrating the demo's SQLite metadata DB ...")
        run([airflow, "db", "migrate"], env, DEMO / "db_migrate.log")
        elapsed = run_dag(airflow, env, DAG_ID, DEMO / "dags_test.log")
        print(summary(emulator.admin.state(), return_values(env), elapsed))
        print()
        weeks = [
            ("week 1, the sample tickets", None),
            (
                "week 2, the same tickets with shuffled labels",
                {"training_file": str(shuffled_labels(DEMO / "work" / "shuffled_labels.jsonl"))},
            ),
        ]
        for number, (title, conf) in enumerate(weeks, start=1):
            log = DEMO / f"champion_challenger_week{number}.log"
            elapsed = run_dag(airflow, env, GATE_DAG_ID, log, conf)
            print(gate_summary(title, latest_run(env, GATE_DAG_ID), elapsed))
            print(f"  logs            {log}")
            print()
    print("emulator stopped")


if __name__ == "__main__":
    main()
