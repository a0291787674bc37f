"""Lineage costs nothing when it is not used: importing the operators loads neither the
OpenLineage provider nor openlineage, and without them the operators run as before and
report no lineage."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from airflow_predibase.operators.datasets import CreateDatasetOperator
from tests.taskkit import make_context

OPERATOR_MODULES = [
    "airflow_predibase.operators.datasets",
    "airflow_predibase.operators.finetuning",
    "airflow_predibase.operators.deployments",
    "airflow_predibase.operators.batch_inference",
    "airflow_predibase.sensors",
]


def test_importing_the_operators_loads_no_lineage_code(tmp_path: Path):
    """Beyond what `import airflow.sdk` loads itself (Airflow reads every installed
    provider's info, the OpenLineage provider's too)."""
    probe = (
        "import sys, json\n"
        "import airflow.sdk\n"
        "before = set(sys.modules)\n"
        f"for name in {OPERATOR_MODULES!r}:\n"
        "    __import__(name)\n"
        "print(json.dumps(sorted(m for m in set(sys.modules) - before if 'openlineage' in m "
        "or m.startswith('airflow_predibase.lineage'))))\n"
    )
    env = {"AIRFLOW_HOME": str(tmp_path), "AIRFLOW__CORE__LOAD_EXAMPLES": "False", "PATH": ""}
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, env=env, timeout=120
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(done.stdout.splitlines()[-1]) == []


@pytest.fixture
def without_openlineage(monkeypatch: pytest.MonkeyPatch) -> None:
    """As if neither the provider nor openlineage-python were installed: importing any of
    them raises ImportError."""
    for name in list(sys.modules):
        if "openlineage" in name or name.startswith("airflow_predibase.lineage_facets"):
            monkeypatch.delitem(sys.modules, name)
    for name in (
        "openlineage",
        "openlineage.client",
        "airflow.providers.openlineage",
        "airflow.providers.openlineage.extractors",
        "airflow_predibase.lineage_facets",
    ):
        monkeypatch.setitem(sys.modules, name, None)


def test_operators_run_and_report_none_without_the_provider(
    without_openlineage: None, emulator: Any, tmp_path: Path
):
    with pytest.raises(ImportError):
        import airflow.providers.openlineage.extractors  # noqa: F401
    data = tmp_path / "tickets.jsonl"
    data.write_text(json.dumps({"prompt": "p", "completion": "c"}) + "\n")
    operator = CreateDatasetOperator(
        task_id="upload", name="tickets", file=str(data), poll_interval=0.05
    )
    assert operator.execute(make_context()) == "tickets"
    assert operator.get_openlineage_facets_on_complete(None) is None
