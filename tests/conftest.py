"""Test-wide set-up and shared fixtures. Airflow reads its config at import, so the
environment is set before anything imports it."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile

_AIRFLOW_HOME = tempfile.mkdtemp(prefix="predibase-tests-airflow-")
atexit.register(shutil.rmtree, _AIRFLOW_HOME, ignore_errors=True)  # nothing left in /tmp
os.environ.setdefault("AIRFLOW_HOME", _AIRFLOW_HOME)
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
os.environ.setdefault("AIRFLOW__CORE__UNIT_TEST_MODE", "False")

from typing import Any  # noqa: E402  (after the environment is set)

import pytest  # noqa: E402

from tests.taskkit import QUICK_PROFILE  # noqa: E402


@pytest.fixture
def emulator(predibase_emulator: Any) -> Any:
    """The emulator with quick lifecycles and the predibase_default connection set."""
    predibase_emulator.admin.set_profile(QUICK_PROFILE)
    return predibase_emulator


@pytest.fixture
def emulator_dialect(emulator: Any) -> str:
    """What the session emulator speaks: `spec`, `platform` or `default` (both), from
    $PREDIBASE_EMULATOR_DIALECT (the plugin starts it so). The connection keeps the default
    `dialect=auto`, so the client detects it: `spec` for `spec`, `platform` otherwise."""
    return str(emulator.config.dialect)


@pytest.fixture
def client(emulator: Any) -> Any:
    """A client from the default connection, as a task gets it (dialect detected)."""
    from airflow_predibase.hooks.predibase import PredibaseHook

    return PredibaseHook().get_client()
