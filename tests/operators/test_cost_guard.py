"""FinetuneOperator's `max_cost` and DeployOperator's lifetime log, against the emulator over
real HTTP: the estimate is asked and logged before a create; a job over budget, or without an
estimate, is never created; a retry that re-attaches never fails on budget."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest
from airflow.providers.common.compat.sdk import AirflowFailException, TaskDeferred

from airflow_predibase.emulator.pytest_plugin import CONNECTION_ENV
from airflow_predibase.operators.deployments import (
    DeleteDeploymentOperator,
    DeployOperator,
    lifetime_report,
)
from airflow_predibase.operators.finetuning import PredibaseCostGuardFailed
from tests.taskkit import QUICK_PROFILE, DictStateStore, Wiretap, make_context, upload
from tests.taskkit import finetune_operator as finetune
from tests.taskkit import finetuning_jobs as jobs

ROWS = [{"prompt": f"ticket {i}: where is my parcel?", "completion": "shipping"} for i in range(40)]


@pytest.fixture
def dataset(client: Any) -> str:
    upload(client, "tickets", ROWS)
    return "tickets"


@pytest.fixture
def logs(capsys: Any, caplog: Any) -> Any:
    caplog.set_level(logging.INFO)

    def read() -> str:
        captured = capsys.readouterr()
        return captured.out + captured.err + caplog.text

    return read


@pytest.fixture
def estimate(emulator_dialect: str, client: Any, dataset: str) -> float:
    """The platform's estimate for the operator's job (production's route)."""
    if emulator_dialect == "spec":
        pytest.skip("the seed spec has no cost estimate")
    from airflow_predibase.client.models import FinetuningJobRequest

    found = client.estimate_finetuning_cost(
        FinetuningJobRequest(base_model="qwen3-8b", dataset="tickets", repo="router")
    )
    assert found is not None
    assert found.cost is not None
    return float(found.cost)


def test_a_job_within_budget_is_created_and_its_estimate_logged_and_summarised(
    emulator: Any, estimate: float, logs: Any
):
    tap = Wiretap(emulator)
    try:
        pytest.MonkeyPatch().setenv(CONNECTION_ENV, tap.connection_json())
        context = make_context()
        assert finetune(max_cost=estimate * 2).execute(context) == "router/1"
    finally:
        tap.close()
    asked = [(m, p) for m, p, _ in tap.seen if "cost-estimate" in p or m == "POST"]
    # Asked once, before anything is created, with the SDK's body.
    assert asked[0] == ("GET", "/v2/finetuning/jobs/cost-estimate")
    assert ("POST", "/v2/finetuning/jobs") in asked[1:]
    assert len([a for a in asked if "cost-estimate" in a[1]]) == 1
    [body] = tap.bodies("GET", "cost-estimate")
    assert body["baseModel"] == "qwen3-8b"
    assert body["datasetName"] == "tickets"
    assert f"estimated cost: ${estimate:.2f} USD" in logs()
    assert context["ti"].xcoms["training_summary"]["estimated_cost"] == estimate


@pytest.mark.parametrize("deferrable", [False, True])
def test_a_job_over_budget_is_never_created_and_not_retried(
    emulator: Any, estimate: float, deferrable: bool
):
    with pytest.raises(PredibaseCostGuardFailed, match=r"over max_cost \$.*not created") as info:
        finetune(max_cost=estimate / 2, deferrable=deferrable).execute(make_context())
    assert isinstance(info.value, AirflowFailException)  # Airflow does not retry it
    assert jobs(emulator) == []


def test_a_retry_that_reattaches_never_fails_on_budget(emulator: Any, estimate: float):
    store = DictStateStore()
    # Try 1 creates the job within budget, and is lost while it waits (it deferred).
    with pytest.raises(TaskDeferred):
        finetune(max_cost=estimate * 2, deferrable=True).execute(make_context(store=store))
    # The price went up (modelled: a budget now under the estimate); the retry re-attaches.
    retried = finetune(max_cost=estimate / 2).execute(make_context(store=store))
    assert retried == "router/1"
    assert len(jobs(emulator)) == 1


@pytest.fixture
def spec_server(emulator: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """A server that speaks the seed spec only (no cost-estimate route); the connection
    points at it."""
    from airflow_predibase.emulator.server import EmulatorServer

    with EmulatorServer(dialect="spec", profile=QUICK_PROFILE) as server:
        monkeypatch.setenv(CONNECTION_ENV, server.connection_json())
        yield server


def test_max_cost_without_an_estimate_fails_before_creating_anything(spec_server: Any):
    from airflow_predibase.hooks.predibase import PredibaseHook

    upload(PredibaseHook().get_client(), "tickets", ROWS)
    with pytest.raises(PredibaseCostGuardFailed, match=r"no cost estimate.*not created"):
        finetune(max_cost=100).execute(make_context())
    state = spec_server.admin.state()
    assert state["finetuning_jobs"] == []
    assert state["repos"] == [], "not even the repository"


def test_without_max_cost_a_missing_estimate_is_one_log_line(spec_server: Any, logs: Any):
    from airflow_predibase.hooks.predibase import PredibaseHook

    upload(PredibaseHook().get_client(), "tickets", ROWS)
    assert finetune().execute(make_context()) == "router/1"
    text = logs()
    assert text.count("cost estimate") == 1
    assert "cost estimate: skipped" in text


def test_max_cost_is_checked_when_the_dag_is_parsed():
    for bad in (0, -1, "x", float("inf")):
        with pytest.raises(ValueError, match="max_cost"):
            finetune(max_cost=bad)


# -- deployments: how long one lived -------------------------------------------------------


def deploy_and_delete(**delete: Any) -> None:
    DeployOperator(
        task_id="deploy", name="d1", base_model="qwen3-8b", poll_interval=0.05, deferrable=False
    ).execute(make_context())
    DeleteDeploymentOperator(
        task_id="teardown", name="d1", poll_interval=0.05, deferrable=False, **delete
    ).execute(make_context())


def test_a_teardown_logs_how_long_the_deployment_lived_and_prices_it_only_with_a_rate(
    emulator: Any, logs: Any
):
    deploy_and_delete()
    text = logs()
    assert "deployment d1 lived 0 min" in text
    assert "/h" not in text, "no price without one given or reported"

    deploy_and_delete(hourly_rate=3.6)
    text = logs()
    assert "deployment d1 lived 0 min" in text
    assert "at 3.6/h (hourly_rate given to the task) that is 0.00" in text
    assert emulator.admin.state()["deployments"] == []


def test_lifetime_report_prices_the_lifetime():
    from airflow_predibase.client.models import Deployment

    deployment = Deployment.model_validate(
        {"name": "d", "status": "ready", "created_at": "2026-01-01T00:00:00Z"}
    )
    now = deployment_epoch = 1767225600.0 + 2 * 3600 + 30 * 60  # 2 h 30 min later
    assert deployment_epoch == now
    text = lifetime_report(deployment, 2.0, now=now)
    assert "lived 2 h 30 min 0 s" in text
    assert "that is 5.00" in text
    unpriced = lifetime_report(deployment, None, now=now)
    assert unpriced.endswith("(created 2026-01-01T00:00:00Z)")  # no rate given: no price
    bare = Deployment.model_validate({"name": "d", "status": "ready"})
    assert "lifetime unknown" in lifetime_report(bare, 2.0, now=now)


def test_the_documented_teardown_runs(emulator: Any, logs: Any):
    """docs/operators/deploy.md, as pasted (the interval shortened for the test)."""
    DeployOperator(
        task_id="deploy",
        name="support-router-eval",
        base_model="qwen3-8b",
        poll_interval=0.05,
        deferrable=False,
    ).execute(make_context())

    teardown = DeleteDeploymentOperator(
        task_id="teardown",
        name="support-router-eval",
        hourly_rate=4.5,  # what you pay per hour, as you know it: the provider knows no prices
    )

    teardown.poll_interval = 0.05
    teardown.execute(make_context())
    text = logs()
    assert "deployment support-router-eval lived" in text
    assert "at 4.5/h (hourly_rate given to the task)" in text


def test_the_documented_budget_runs(emulator: Any, estimate: float):
    """docs/operators/finetune.md, as pasted (the interval shortened for the test)."""
    from airflow_predibase.operators import FinetuneOperator

    finetune = FinetuneOperator(
        task_id="finetune",
        base_model="qwen3-8b",
        dataset="tickets",
        repo="router",
        max_cost=25.0,  # US dollars, the currency of the platform's estimate
    )

    finetune.poll_interval = 0.05
    context = make_context()
    assert estimate < 25.0
    assert finetune.execute(context) == "router/1"
    assert context["ti"].xcoms["training_summary"]["estimated_cost"] == estimate
