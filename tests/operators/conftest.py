"""Fixtures of the operator tests (the emulator fixtures are in tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.taskkit import Wiretap

#: The dialect a `forced` connection names, by what the emulator speaks: under `default`
#: (both) the seed's, since `auto` already detects production's.
FORCED_DIALECT = {"default": "spec", "spec": "spec", "platform": "platform"}


@pytest.fixture(params=["auto", "forced"])
def wiretap(
    emulator: Any, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> Iterator[Wiretap]:
    """The emulator behind a recording proxy; `predibase_default` points at the proxy, with
    the API dialect detected or forced (`FORCED_DIALECT`: the seed's wherever the emulator
    speaks it, production's against `--dialect platform`)."""
    from airflow_predibase.emulator.pytest_plugin import CONNECTION_ENV

    dialect = "auto"
    if request.param == "forced":
        dialect = FORCED_DIALECT[str(emulator.config.dialect)]
    tap = Wiretap(emulator)
    monkeypatch.setenv(CONNECTION_ENV, tap.connection_json(dialect=dialect))
    yield tap
    tap.close()
