"""The provider on real Airflow 3: api-server, scheduler, dag-processor and triggerer.

One stack per database runs every scenario of that database at once (see scenarios.py);
each test below reports one scenario's outcome. SQLite runs all of them; PostgreSQL runs
the chain, the triggerer restart and the secrets check (a second full set would double
the suite's time), or is skipped with the reason printed if no cluster can be started.
"""

from __future__ import annotations

import pytest

from tests.system.scenarios import Campaign

pytestmark = pytest.mark.system


def check_scenario_outcome(campaign: Campaign, name: str) -> None:
    if campaign.unavailable:
        pytest.skip(f"{campaign.db}: {campaign.unavailable}")
    outcome = campaign.outcomes[name]
    for retry in outcome.output.retries:
        print(f"[system {campaign.db}/{name}] retry used: {retry}")
    if outcome.error is not None:
        raise outcome.error


@pytest.fixture(params=["sqlite", "postgres"])
def campaign(request: pytest.FixtureRequest) -> Campaign:
    """The scenarios that run on both databases."""
    result: Campaign = request.getfixturevalue(f"{request.param}_campaign")
    return result


def test_full_chain_via_rest(campaign: Campaign) -> None:
    """1. predibase_retraining triggered over REST: deferred, one of each resource, links."""
    check_scenario_outcome(campaign, "chain")


def test_triggerer_restart_resumes_the_wait(campaign: Campaign) -> None:
    """2. SIGKILL the triggerer mid-wait: the new one polls the same job to success."""
    check_scenario_outcome(campaign, "triggerer_restart")


def test_worker_crash_before_deferral_reattaches(sqlite_campaign: Campaign) -> None:
    """3a. kill -9 the task after its job exists, before deferral: the retry re-attaches."""
    check_scenario_outcome(sqlite_campaign, "worker_crash")


def test_worker_crash_after_lost_create_response_reattaches(sqlite_campaign: Campaign) -> None:
    """3b. The create response is dropped and the task killed: still exactly one job."""
    check_scenario_outcome(sqlite_campaign, "create_dropped")


def test_mark_deferred_task_failed_cancels_job(sqlite_campaign: Campaign) -> None:
    """4a. Mark a deferred fine-tune failed via REST: trigger on_kill cancels the job."""
    check_scenario_outcome(sqlite_campaign, "mark_failed")


def test_clear_succeeded_finetune_starts_new_job(sqlite_campaign: Campaign) -> None:
    """4b. Clear a succeeded fine-tune: a new job (rerun_on_clear=True, the default)."""
    check_scenario_outcome(sqlite_campaign, "clear")


def test_clear_deferred_finetune_reattaches(sqlite_campaign: Campaign) -> None:
    """4c. Clear a deferred fine-tune: on_kill leaves the job running; the retry re-attaches."""
    check_scenario_outcome(sqlite_campaign, "clear_deferred")


def test_deadline_fails_and_cancels_job(sqlite_campaign: Campaign) -> None:
    """5. A short timeout on a job that never finishes: timeout failure, job cancelled."""
    check_scenario_outcome(sqlite_campaign, "deadline")


def test_chain_survives_faults_in_flight(sqlite_campaign: Campaign) -> None:
    """6. 429s, 5xx bursts and slow answers on the status routes: success, no duplicate."""
    check_scenario_outcome(sqlite_campaign, "faults")


def test_ten_mapped_finetunes_one_triggerer(sqlite_campaign: Campaign) -> None:
    """7. Ten mapped fine-tunes deferred at once in one triggerer: ten jobs, all succeed."""
    check_scenario_outcome(sqlite_campaign, "mapped")


def test_token_never_leaks(campaign: Campaign) -> None:
    """8. The token is in no log, trigger row, XCom value or rendered field."""
    check_scenario_outcome(campaign, "secrets")
