"""The client package imports lazily: what operators import at module level stays light.

That nothing under `airflow_predibase/client` (or the emulator) imports Airflow, statically
or at run time, is checked with the rest of the import graph in `tests/test_import_graph.py`.
"""

from __future__ import annotations

import subprocess
import sys


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
