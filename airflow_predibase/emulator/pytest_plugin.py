"""pytest fixtures for a Predibase emulator, registered by the `pytest11` entry point.

Any project that installs airflow-provider-predibase gets them:

- ``predibase_emulator``: a running `EmulatorServer` (one per session, state reset before
  each test) with ``AIRFLOW_CONN_PREDIBASE_DEFAULT`` pointing at it for the test.
- ``predibase_emulator_server``: the session server itself, without reset or env var.
- ``predibase_emulator_app``: an in-process app on a manual clock (no socket).

Every test also starts with fresh request budgets (`client/_budget.py`): a 429 one test
provokes never pauses or slows the next.

The profile of the session server comes from the ini option ``predibase_emulator_profile``
(default ``fast``); its per-tenant rate limit from ``predibase_emulator_rate_limit``
(requests per second, default none); its dialect from ``$PREDIBASE_EMULATOR_DIALECT``,
else the ini option ``predibase_emulator_dialect`` (default ``default``; see
docs/platform.md). Heavy imports happen inside the fixtures: this module is imported by
every pytest run in an environment that has the provider installed.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from airflow_predibase.emulator.in_process import InProcessEmulator
    from airflow_predibase.emulator.server import EmulatorServer

CONNECTION_ENV = "AIRFLOW_CONN_PREDIBASE_DEFAULT"
PROFILE_OPTION = "predibase_emulator_profile"
DIALECT_OPTION = "predibase_emulator_dialect"
DIALECT_ENV = "PREDIBASE_EMULATOR_DIALECT"
RATE_LIMIT_OPTION = "predibase_emulator_rate_limit"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini(
        PROFILE_OPTION,
        help="Timing profile of the predibase_emulator fixture: instant, fast or realistic.",
        default="fast",
    )
    parser.addini(
        DIALECT_OPTION,
        help="Dialect of the predibase_emulator fixture: spec, platform or default "
        f"(the env var {DIALECT_ENV} overrides it).",
        default="default",
    )
    parser.addini(
        RATE_LIMIT_OPTION,
        help="Requests per second per tenant the predibase_emulator fixture allows (past it: "
        "429 with Retry-After); empty: no limit.",
        default="",
    )


def emulator_dialect(config: pytest.Config) -> str:
    """The session server's dialect: $PREDIBASE_EMULATOR_DIALECT, else the ini option."""
    return os.environ.get(DIALECT_ENV) or str(config.getini(DIALECT_OPTION) or "default")


@pytest.fixture(autouse=True)
def _fresh_predibase_request_budgets() -> Iterator[None]:
    """Request budgets are per process: forget them around each test."""
    from airflow_predibase.client._budget import BUDGETS

    BUDGETS.clear()
    yield
    BUDGETS.clear()


@pytest.fixture(scope="session")
def predibase_emulator_server(request: pytest.FixtureRequest) -> Iterator[EmulatorServer]:
    """One emulator for the whole session, on a free loopback port."""
    from airflow_predibase.emulator.server import EmulatorServer

    profile = str(request.config.getini(PROFILE_OPTION) or "fast")
    rate_limit = float(request.config.getini(RATE_LIMIT_OPTION) or 0) or None
    with EmulatorServer(
        profile=profile, dialect=emulator_dialect(request.config), rate_limit=rate_limit
    ) as server:
        yield server


@pytest.fixture
def predibase_emulator(
    predibase_emulator_server: EmulatorServer, monkeypatch: pytest.MonkeyPatch
) -> EmulatorServer:
    """A clean emulator, and the `predibase_default` Airflow connection pointing at it."""
    predibase_emulator_server.reset()
    monkeypatch.setenv(CONNECTION_ENV, predibase_emulator_server.connection_json())
    return predibase_emulator_server


@pytest.fixture
def predibase_emulator_app(request: pytest.FixtureRequest) -> InProcessEmulator:
    """A fresh in-process emulator on a `ManualClock` (drive it with httpx.ASGITransport).

    A plain fixture, so it works whatever the project's pytest-asyncio mode is.
    """
    from airflow_predibase.emulator.in_process import InProcessEmulator

    return InProcessEmulator.create(dialect=emulator_dialect(request.config))
