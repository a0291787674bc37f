"""The client must work without Airflow: nothing under airflow_predibase/client imports it."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import airflow_predibase.client

CLIENT_DIR = Path(airflow_predibase.client.__file__).parent


def _imported_modules(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def test_no_client_file_imports_airflow() -> None:
    files = sorted(CLIENT_DIR.rglob("*.py"))
    assert len(files) > 10, "the scan found too few files to mean anything"
    offenders = {
        f"{path.relative_to(CLIENT_DIR)}: {module}"
        for path in files
        for module in _imported_modules(path)
        if module == "airflow" or module.startswith("airflow.")
    }
    assert not offenders


def test_importing_and_using_the_client_loads_no_airflow() -> None:
    code = (
        "import sys, asyncio\n"
        "from airflow_predibase.client import PredibaseClient, ClientSettings\n"
        "from airflow_predibase.client import AsyncPredibaseClient\n"
        "import airflow_predibase.client.models, airflow_predibase.client._pool\n"
        "c = PredibaseClient(ClientSettings(token='pb_x')); c.close()\n"
        "bad = sorted(m for m in sys.modules if m == 'airflow' or m.startswith('airflow.'))\n"
        "assert not bad, bad\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr


def test_package_import_is_lazy() -> None:
    # `airflow_predibase.client.errors` is what operators import at module level.
    code = (
        "import sys\n"
        "import airflow_predibase.client.errors\n"
        "assert 'airflow_predibase.client._sync' not in sys.modules\n"
        "assert 'httpx' not in sys.modules, 'httpx imported eagerly'\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
