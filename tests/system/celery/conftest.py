"""The Celery campaign as a session fixture, and its summary at the end of the run.

The campaign runs only when asked for: ``PREDIBASE_CELERY_REQUIRED=1`` (``make test-celery``).
Then a missing redis-server, Celery provider or PostgreSQL cluster FAILS the tests; without
it they are skipped, with the reason, so that ``make test`` does not pay for a third stack.
"""

from __future__ import annotations

import importlib.util
import os
from typing import Any

import pytest

from tests.system.harness.database import postgres_bin_dir
from tests.system.harness.redis import redis_server_path
from tests.system.scenarios.campaign import Campaign

REQUIRED_VAR = "PREDIBASE_CELERY_REQUIRED"
_CAMPAIGNS: list[Campaign] = []


def missing_requirements() -> list[str]:
    missing = []
    if redis_server_path() is None:
        missing.append("redis-server (apt-get install redis-server)")
    if importlib.util.find_spec("airflow.providers.celery") is None:
        missing.append(
            "apache-airflow-providers-celery (pip install -e '.[test-celery]', as make test-celery)"
        )
    if postgres_bin_dir() is None:
        missing.append("PostgreSQL (initdb, pg_ctl; set PG_BIN)")
    return missing


@pytest.fixture(scope="session")
def celery_campaign() -> Campaign:
    if os.environ.get(REQUIRED_VAR) != "1":
        pytest.skip(
            f"the Celery campaign runs only with {REQUIRED_VAR}=1 (make test-celery): "
            "a third stack (Redis, 2 workers, 2 triggerers) is too much for make test"
        )
    missing = missing_requirements()
    if missing:
        pytest.fail(f"{REQUIRED_VAR}=1 but missing: {', '.join(missing)}", pytrace=False)
    from tests.system.celery.campaign import run_celery_campaign

    campaign = run_celery_campaign()
    _CAMPAIGNS.append(campaign)
    return campaign


def pytest_terminal_summary(terminalreporter: Any) -> None:
    write = terminalreporter.write_line
    for campaign in _CAMPAIGNS:
        terminalreporter.section("Predibase system tests: the Celery campaign")
        write(
            f"{campaign.db} (CeleryExecutor, Redis, 2 workers, 2 triggerers): "
            f"{campaign.wall_seconds:.0f} s wall (stack up in {campaign.startup_seconds:.0f} s)"
        )
        for name in campaign.scenarios:
            outcome = campaign.outcomes.get(name)
            if outcome is None:
                write(f"  {name:<18} NOT RUN")
                continue
            status = "passed" if outcome.error is None else "FAILED"
            write(f"  {name:<18} {status} in {outcome.seconds:.0f} s")
            for retry in outcome.output.retries:
                write(f"    retry used: {retry}")
