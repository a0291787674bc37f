"""The provider on a distributed Airflow: CeleryExecutor, PostgreSQL, Redis, two workers and
two triggerers (tests/system/celery/scenarios.py). ``make test-celery`` runs it."""

from __future__ import annotations

import pytest

from tests.system.celery.scenarios import SCENARIOS
from tests.system.scenarios.campaign import Campaign
from tests.system.test_system import check_scenario_outcome

pytestmark = [pytest.mark.system, pytest.mark.celery]


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_celery_scenario(scenario: str, celery_campaign: Campaign) -> None:
    """The scenario's outcome on the Celery stack (see the scenario's docstring)."""
    check_scenario_outcome(celery_campaign, scenario)
