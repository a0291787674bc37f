"""Campaign fixtures of the system tests, and the summary printed at the end of the run.

The SQLite campaign (every scenario) starts first. If PostgreSQL tests are selected too,
their campaign starts in the background as soon as the SQLite chain run has finished (the
busiest part of the SQLite campaign), so the two overlap instead of adding up.
"""

from __future__ import annotations

import concurrent.futures
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.system.harness import ABORT
from tests.system.scenarios.campaign import Campaign, run_campaign

_CAMPAIGNS: list[Campaign] = []
_BACKGROUND: dict[str, concurrent.futures.Future[Campaign]] = {}
_EXECUTOR = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="campaign")
#: When the first system test started and the last one ended (time.monotonic()).
_WALL: list[float] = []


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item) -> Iterator[None]:
    """Times the system tests (hooks of this conftest only see the tests under it)."""
    started = time.monotonic()
    yield
    _WALL[:] = [min(_WALL[0], started) if _WALL else started, time.monotonic()]


def _selected(session: pytest.Session, db: str) -> bool:
    """Whether any selected test needs the campaign of `db`."""
    for item in session.items:
        if f"{db}_campaign" in getattr(item, "fixturenames", ()):
            return True
        callspec = getattr(item, "callspec", None)
        if callspec is not None and callspec.params.get("db") == db:
            return True
    return False


@pytest.fixture(scope="session")
def sqlite_campaign(request: pytest.FixtureRequest) -> Campaign:
    """The SQLite scenarios (all of them), concurrently, on one stack (torn down on return)."""

    def start_postgres() -> None:
        _BACKGROUND["postgres"] = _EXECUTOR.submit(run_campaign, "postgres")

    early = start_postgres if _selected(request.session, "postgres") else None
    campaign = run_campaign("sqlite", when_chain_done=early)
    _CAMPAIGNS.append(campaign)
    return campaign


@pytest.fixture(scope="session")
def postgres_campaign() -> Campaign:
    """The PostgreSQL scenarios (a representative subset) on a private cluster, if one can
    be started."""
    future = _BACKGROUND.pop("postgres", None)
    campaign = future.result() if future else run_campaign("postgres")
    _CAMPAIGNS.append(campaign)
    return campaign


def pytest_sessionfinish(session: pytest.Session) -> None:
    """A background campaign nobody waited for (e.g. ``-x`` stopped early): stop it now;
    it tears down everything it started before the interpreter exits."""
    future = _BACKGROUND.pop("postgres", None)
    if future is not None:
        ABORT.set()
        future.result()


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not _CAMPAIGNS and not _WALL:
        return
    write = terminalreporter.write_line
    terminalreporter.section("Predibase system tests (real Airflow)")
    for campaign in _CAMPAIGNS:
        if campaign.unavailable:
            write(f"{campaign.db}: SKIPPED ({campaign.unavailable})")
            continue
        write(
            f"{campaign.db}: {campaign.wall_seconds:.0f} s wall "
            f"(stack up in {campaign.startup_seconds:.0f} s); scenarios: "
            + ", ".join(campaign.scenarios)
        )
        for name, outcome in campaign.outcomes.items():
            status = "passed" if outcome.error is None else "FAILED"
            write(f"  {name:<18} {status} in {outcome.seconds:.0f} s")
            for retry in outcome.output.retries:
                write(f"    retry used: {retry}")
    if _WALL:
        write(f"system suite wall time: {_WALL[1] - _WALL[0]:.0f} s (tests/system, all modules)")
