"""The provider on real Airflow 3: api-server, scheduler, dag-processor and triggerer.

One stack per database runs every scenario of that database at once (scenarios/campaign.py);
each test below reports one scenario's outcome on one database. The tests come from the
scenario registry (`@scenario` in tests/system/scenarios/), one per scenario and database it
declares: SQLite runs all of them; PostgreSQL the chain, the triggerer restart and the
secrets check (a second full set would double the suite's time), or is skipped with the
reason printed if no cluster can be started.
"""

from __future__ import annotations

import pytest

from tests.system.scenarios import SCENARIOS
from tests.system.scenarios.campaign import Campaign

pytestmark = pytest.mark.system


def check_scenario_outcome(campaign: Campaign, name: str) -> None:
    if campaign.unavailable:
        pytest.skip(f"{campaign.db}: {campaign.unavailable}")
    outcome = campaign.outcomes[name]
    for retry in outcome.output.retries:
        print(f"[system {campaign.db}/{name}] retry used: {retry}")
    if outcome.error is not None:
        raise outcome.error


@pytest.mark.parametrize(
    ("scenario", "db"),
    [
        pytest.param(s.name, db, id=f"{s.name}-{db}")
        for s in SCENARIOS.values()
        for db in s.databases
    ],
)
def test_scenario(scenario: str, db: str, request: pytest.FixtureRequest) -> None:
    """The scenario's outcome on the campaign of its database (see the scenario's docstring)."""
    campaign: Campaign = request.getfixturevalue(f"{db}_campaign")
    check_scenario_outcome(campaign, scenario)
