"""`make demo`: the retraining DAG end to end against a local Predibase emulator.

Starts the emulator, points the `predibase_default` connection at it, migrates a private
SQLite Airflow home under .demo/, runs `airflow dags test predibase_retraining`, prints a
summary, and stops the emulator. Nothing outside .demo/ is touched.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / ".demo"
DAG_ID = "predibase_retraining"


def airflow_env(connection_json: str) -> dict[str, str]:
    home = DEMO / "airflow"
    home.mkdir(parents=True, exist_ok=True)
    return {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags_examples"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW_CONN_PREDIBASE_DEFAULT": connection_json,
        "PREDIBASE_POLL_INTERVAL": "1",
        "PREDIBASE_EXAMPLES_WORKDIR": str(DEMO / "work"),
    }


def run(cmd: list[str], env: dict[str, str], log: Path) -> None:
    with log.open("w") as out:
        done = subprocess.run(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, check=False)
    if done.returncode != 0:
        print(log.read_text()[-6000:])
        sys.exit(f"`{' '.join(cmd[1:])}` failed (exit {done.returncode}); full log: {log}")


def return_values(env: dict[str, str]) -> dict[str, Any]:
    """The XCom return values of the newest run, straight from the SQLite metadata DB."""
    db = Path(env["AIRFLOW_HOME"]) / "airflow.db"
    with sqlite3.connect(db) as conn:
        rows = conn.execute(
            "SELECT task_id, value FROM xcom WHERE dag_id = ? AND key = 'return_value' "
            "AND run_id = (SELECT run_id FROM dag_run WHERE dag_id = ? ORDER BY id DESC LIMIT 1)",
            (DAG_ID, DAG_ID),
        ).fetchall()
    values = {}
    for task_id, value in rows:
        values[task_id] = json.loads(value) if isinstance(value, str | bytes) else value
    return values


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


def main() -> None:
    from airflow_predibase.emulator.server import EmulatorServer

    DEMO.mkdir(exist_ok=True)
    airflow = str(Path(sys.executable).with_name("airflow"))
    with EmulatorServer(profile="fast") as emulator:
        print(f"emulator on {emulator.url} (tenant {emulator.tenant}, profile fast)")
        env = airflow_env(emulator.connection_json())
        print("migrating the demo's SQLite metadata DB ...")
        run([airflow, "db", "migrate"], env, DEMO / "db_migrate.log")
        print(f"running `airflow dags test {DAG_ID}` ...")
        started = time.monotonic()
        run([airflow, "dags", "test", DAG_ID], env, DEMO / "dags_test.log")
        elapsed = time.monotonic() - started
        print(summary(emulator.admin.state(), return_values(env), elapsed))
    print("emulator stopped")


if __name__ == "__main__":
    main()
