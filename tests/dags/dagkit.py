"""What the `airflow dags test` suites share: the example DAGs, a private SQLite Airflow home
pointed at an emulator, the migration, a `dags test` run, and loading a DAG file."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
DAGS = ROOT / "dags_examples"
AIRFLOW = str(Path(sys.executable).with_name("airflow"))


def dag_bag(path: Path) -> Any:
    """A DagBag of `path` (a file or the folder), wherever this Airflow keeps the class."""
    try:
        from airflow.dag_processing.dagbag import DagBag  # Airflow 3.2+
    except ImportError:
        from airflow.models.dagbag import DagBag  # Airflow 3.1

    return DagBag(dag_folder=str(path))


def airflow_env(home: Path, emulator: Any, **extra: str) -> dict[str, str]:
    """The environment of an Airflow home at `home` whose `predibase_default` is `emulator`."""
    return {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(home / "logs"),
        "AIRFLOW_CONN_PREDIBASE_DEFAULT": emulator.connection_json(),
        "PREDIBASE_POLL_INTERVAL": "0.5",
        **extra,
    }


def start_migration(env: dict[str, str]) -> subprocess.Popen[str]:
    """`airflow db migrate` in the background (a test may set the emulator up meanwhile)."""
    return subprocess.Popen(
        [AIRFLOW, "db", "migrate"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def finish_migration(migration: subprocess.Popen[str]) -> None:
    out, _ = migration.communicate(timeout=300)
    assert migration.returncode == 0, out[-3000:]


def dags_test(
    env: dict[str, str], dag_id: str, conf: dict[str, Any] | None = None, *, token: str
) -> str:
    """`airflow dags test dag_id`: its output, once it succeeded without printing `token`."""
    cmd = [AIRFLOW, "dags", "test", dag_id]
    if conf is not None:
        cmd += ["--conf", json.dumps(conf)]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-8000:]
    assert token not in output
    return output
