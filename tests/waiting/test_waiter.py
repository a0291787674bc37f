"""The wait rules shared by blocking loops and triggers: pure, no clock, no I/O."""

from __future__ import annotations

import random

import pytest

from airflow_predibase.client.errors import (
    APIConnectionError,
    AuthenticationError,
    NotFoundError,
    RateLimitError,
    ServerError,
)
from airflow_predibase.client.models import Deployment, FinetuningJob
from airflow_predibase.kinds import KINDS, resource_kind
from airflow_predibase.waiting.events import JobEvent
from airflow_predibase.waiting.waiter import PollPolicy, Waiter


def waiter(deadline: float | None = None, **policy: float) -> Waiter:
    return Waiter(
        KINDS["finetuning_job"],
        "job-1",
        PollPolicy(**{"interval": 10.0, "jitter": 0.0, **policy}),  # type: ignore[arg-type]
        deadline,
        rng=random.Random(0),
    )


def job(status: str, **fields: object) -> FinetuningJob:
    return FinetuningJob.model_validate({"id": "job-1", "status": status, **fields})


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        ("completed", "success"),
        ("errored", "failed"),
        ("canceled", "cancelled"),
        ("stopped", "cancelled"),
    ],
)
def test_terminal_statuses_end_the_wait(status: str, outcome: str):
    event = waiter().on_resource(job(status, error="boom"), now=0)
    assert isinstance(event, JobEvent)
    assert event.status == outcome
    assert event.remote_status == status


@pytest.mark.parametrize("status", ["queued", "training", "stopping", "some_future_state"])
def test_non_terminal_and_unknown_statuses_keep_waiting(status: str):
    assert waiter().on_resource(job(status), now=0) == 10.0


def test_failure_event_carries_the_servers_reason_and_the_job():
    event = waiter().on_resource(job("errored", error="dataset has no completion column"), 0)
    assert isinstance(event, JobEvent)
    assert "dataset has no completion column" in event.message
    assert event.resource is not None
    assert event.resource["id"] == "job-1"


def test_deadline_turns_into_a_timeout_event_and_caps_the_sleep():
    w = waiter(deadline=100.0)
    assert w.on_resource(job("training"), now=95.0) == 5.0
    event = w.on_resource(job("training"), now=100.0)
    assert isinstance(event, JobEvent)
    assert event.status == "timeout"
    assert "training" in event.message


@pytest.mark.parametrize(
    "error",
    [
        APIConnectionError("reset"),
        ServerError("bad gateway", status_code=502),
        RateLimitError("slow down", status_code=429),
    ],
)
def test_transient_errors_back_off_exponentially(error: Exception):
    w = waiter()
    delays = [w.on_error(error, now=0) for _ in range(3)]  # type: ignore[arg-type]
    assert delays == [10.0, 20.0, 40.0]


def test_retry_after_is_honoured_when_longer_than_the_backoff():
    delay = waiter().on_error(RateLimitError("x", status_code=429, retry_after=25.0), now=0)
    assert delay == 25.0


def test_a_success_resets_the_error_count():
    w = waiter(max_consecutive_errors=3)
    w.on_error(APIConnectionError("x"), now=0)
    w.on_error(APIConnectionError("x"), now=0)
    w.on_resource(job("training"), now=0)
    assert w.on_error(APIConnectionError("x"), now=0) == 10.0


def test_too_many_consecutive_failures_end_the_wait_clearly():
    w = waiter(max_consecutive_errors=3)
    w.on_error(APIConnectionError("x"), now=0)
    w.on_error(APIConnectionError("x"), now=0)
    event = w.on_error(APIConnectionError("connection refused"), now=0)
    assert isinstance(event, JobEvent)
    assert event.status == "failed"
    assert "3 times in a row" in event.message
    assert "connection refused" in event.message


@pytest.mark.parametrize(
    "error",
    [AuthenticationError("bad token", status_code=401), NotFoundError("x", status_code=404)],
)
def test_permanent_errors_end_the_wait_at_once(error: Exception):
    event = waiter().on_error(error, now=0)  # type: ignore[arg-type]
    assert isinstance(event, JobEvent)
    assert event.status == "failed"


def test_jitter_spreads_polls_within_bounds():
    w = Waiter(KINDS["finetuning_job"], "j", PollPolicy(interval=10, jitter=0.2), None)
    delays = {w.on_resource(job("training"), now=0) for _ in range(50)}
    assert len(delays) > 10
    assert all(8.0 <= d <= 12.0 for d in delays)  # type: ignore[operator]


def test_first_poll_waits_at_least_the_first_poll_delay():
    w = waiter(first_poll_delay=1.0)
    assert all(w.first_delay(now=0) == 1.0 for _ in range(20))


def test_first_polls_of_waits_revived_together_spread_over_one_interval():
    w = Waiter(KINDS["finetuning_job"], "j", PollPolicy(interval=20, first_poll_delay=1), None)
    delays = [w.first_delay(now=0) for _ in range(200)]
    assert all(1.0 <= d <= 21.0 for d in delays)  # type: ignore[operator]
    assert len({int(d) for d in delays}) >= 15  # type: ignore[arg-type]  (most seconds used)


def test_deployment_standby_counts_as_serving():
    w = Waiter(KINDS["deployment"], "d", PollPolicy(interval=1), None)
    event = w.on_resource(Deployment(name="d", status="standby"), now=0)
    assert isinstance(event, JobEvent)
    assert event.status == "success"


def test_progress_line_only_when_something_changed():
    w = waiter()
    running = job("training", progress={"step": 3, "total_steps": 9, "epoch": 1, "train_loss": 0.5})
    assert w.progress_line(running) == (
        "fine-tuning job job-1: status=training step=3/9 epoch=1 loss=0.5000"
    )
    assert w.progress_line(running) is None


def test_unknown_job_type_names_the_valid_choices():
    with pytest.raises(
        ValueError, match="finetuning_job, batch_inference_job, deployment, dataset"
    ):
        resource_kind("training_job")


@pytest.mark.parametrize(
    ("bad", "field"),
    [
        ({"interval": 0}, "poll_interval"),
        ({"jitter": 1.5}, "jitter"),
        ({"max_consecutive_errors": 0}, "max_consecutive_errors"),
    ],
)
def test_policy_rejects_nonsense_naming_the_field(bad: dict[str, float], field: str):
    with pytest.raises(ValueError, match=field):
        PollPolicy(**bad)  # type: ignore[arg-type]


# -- an unknown status (issue 10, defect 4) ------------------------------------------------


def test_an_unknown_status_warns_once_and_ends_the_wait_after_the_bound(caplog):
    """Regression: an unknown status kept the wait going for ever, silently."""
    w = waiter(max_unknown_status=100.0)
    with caplog.at_level("WARNING", logger="airflow_predibase.waiting"):
        assert w.on_resource(job("suspended"), now=0) == 10.0
        assert w.on_resource(job("suspended"), now=50) == 10.0
        assert w.on_resource(job("suspended"), now=95) == 5.0  # the sleep stops at the bound
        event = w.on_resource(job("suspended"), now=100)
    assert isinstance(event, JobEvent)
    assert event.status == "failed"
    assert event.remote_status == "suspended"
    assert "'suspended'" in event.message
    assert "100 s" in event.message
    warnings = [r for r in caplog.records if "does not know" in r.getMessage()]
    assert len(warnings) == 1
    assert "fine-tuning job job-1" in warnings[0].getMessage()


def test_a_known_status_in_between_restarts_the_unknown_clock():
    w = waiter(max_unknown_status=100.0)
    w.on_resource(job("suspended"), now=0)
    w.on_resource(job("training"), now=90)
    assert w.on_resource(job("suspended"), now=150) == 10.0
    assert isinstance(w.on_resource(job("suspended"), now=250), JobEvent)


def test_the_unknown_status_bound_has_a_finite_default_and_can_be_lifted():
    assert PollPolicy().max_unknown_status == 3600.0
    w = waiter(max_unknown_status=None)  # type: ignore[arg-type]
    assert w.on_resource(job("suspended"), now=10**9) == 10.0


def test_the_deadline_still_wins_over_a_longer_unknown_bound():
    w = waiter(deadline=50.0, max_unknown_status=100.0)
    w.on_resource(job("suspended"), now=0)
    event = w.on_resource(job("suspended"), now=50)
    assert isinstance(event, JobEvent)
    assert event.status == "timeout"


@pytest.mark.parametrize(
    ("bad", "field"),
    [
        ({"interval": float("inf")}, "poll_interval"),
        ({"interval": float("nan")}, "poll_interval"),
        ({"max_unknown_status": 0}, "max_unknown_status"),
        ({"max_unknown_status": float("inf")}, "max_unknown_status"),
    ],
)
def test_policy_rejects_non_finite_numbers(bad: dict[str, float], field: str):
    with pytest.raises(ValueError, match=field):
        PollPolicy(**bad)  # type: ignore[arg-type]
