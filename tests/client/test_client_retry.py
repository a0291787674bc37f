"""The retry policy: the pure decision table, then the behaviour through the real client.

Nothing sleeps: the client gets a FakeClock whose sleep only advances the fake time.
"""

from __future__ import annotations

from datetime import datetime, timezone
from email.utils import format_datetime

import httpx
import pytest
from predibase_fakes import EXACT, FakeClock, Script, fail, reply, sync_client

from airflow_predibase.client import (
    APIConnectionError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    NotFoundError,
    OutcomeUnknownError,
    RateLimitError,
    RetryPolicy,
    ServerError,
)
from airflow_predibase.client._retry import decide, parse_retry_after, retryable
from airflow_predibase.client.models import FinetuningJobRequest

NOW = 1_750_000_000.0  # a fixed wall clock for HTTP dates
POLICY = RetryPolicy(
    max_attempts=5,
    initial_backoff=0.5,
    max_backoff=8.0,
    jitter=0.5,
    retry_after_cap=60.0,
    total_timeout=120.0,
)
JOB = FinetuningJobRequest(base_model="llama", dataset="ds", repo="r")
JOB_JSON = {"id": "job-1", "status": "queued"}


def http_date(offset: float) -> str:
    return format_datetime(datetime.fromtimestamp(NOW + offset, tz=timezone.utc), usegmt=True)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("7", 7.0),
        ("0.5", 0.5),
        (http_date(30), 30.0),
        (http_date(-30), 0.0),  # a past date means "now"
        ("soon", None),
        ("-3", None),
        ("", None),
        (None, None),
        ("Wed, 99 Foo 2025 99:99:99 GMT", None),
    ],
    ids=[
        "seconds",
        "fraction",
        "http-date",
        "past-date",
        "garbage",
        "negative",
        "empty",
        "none",
        "bad-date",
    ],
)
def test_parse_retry_after(header: str | None, expected: float | None) -> None:
    assert parse_retry_after(header, now=NOW) == expected


@pytest.mark.parametrize(
    ("kwargs", "wait"),
    [
        # Retry-After wins over backoff, and is clamped to the cap.
        ({"status": 429, "retry_after": "7"}, 7.0),
        ({"status": 429, "retry_after": http_date(30)}, 30.0),
        ({"status": 429, "retry_after": http_date(-30)}, 0.0),
        ({"status": 429, "retry_after": "3600"}, 60.0),
        ({"status": 503, "retry_after": "2"}, 2.0),
        # Garbage falls back to backoff: 0.5 * 2**(3-1) = 2, jitter takes rand * 50% off.
        ({"status": 429, "retry_after": "soon", "attempt": 3, "rand": 0.0}, 2.0),
        ({"status": 429, "retry_after": "soon", "attempt": 3, "rand": 0.5}, 1.5),
        ({"status": 503, "attempt": 1, "rand": 0.0}, 0.5),
        ({"status": 503, "attempt": 4, "rand": 0.0}, 4.0),
        ({"status": 503, "attempt": 4, "rand": 0.99}, 2.02),
        # Backoff stops growing at max_backoff.
        ({"status": 503, "attempt": 4, "rand": 0.0, "policy": RetryPolicy(max_backoff=3)}, 3.0),
        # What is retried at all.
        ({"status": 502}, 0.5),
        ({"status": 504}, 0.5),
        ({"status": 500}, 0.5),
        ({"status": 501}, None),
        ({"status": 400}, None),
        ({"status": 401}, None),
        ({"status": 404}, None),
        ({"status": 409}, None),
        ({"error": httpx.ReadTimeout("t")}, 0.5),
        ({"error": httpx.ConnectError("c")}, 0.5),
        ({"error": httpx.RemoteProtocolError("dropped")}, 0.5),
        # Create POSTs: only what was rejected before any work, or never sent.
        ({"status": 429, "idempotent": False, "retry_after": "1"}, 1.0),
        ({"error": httpx.ConnectError("c"), "idempotent": False}, 0.5),
        ({"error": httpx.ConnectTimeout("c"), "idempotent": False}, 0.5),
        ({"error": httpx.PoolTimeout("p"), "idempotent": False}, 0.5),
        ({"error": httpx.ReadTimeout("t"), "idempotent": False}, None),
        ({"error": httpx.WriteTimeout("t"), "idempotent": False}, None),
        ({"error": httpx.RemoteProtocolError("dropped"), "idempotent": False}, None),
        ({"status": 503, "idempotent": False}, None),
        ({"status": 500, "idempotent": False}, None),
        ({"status": 502, "idempotent": False}, None),
        # Bounded attempts and total time.
        ({"status": 503, "attempt": 5}, None),
        ({"status": 503, "attempt": 4}, 4.0),
        ({"status": 429, "retry_after": "30", "elapsed": 100.0}, None),
        ({"status": 429, "retry_after": "20", "elapsed": 100.0}, 20.0),
    ],
)
def test_decide(kwargs: dict, wait: float | None) -> None:
    args = {"attempt": 1, "elapsed": 0.0, "idempotent": True, "now": NOW, "rand": 0.0}
    kwargs = dict(kwargs)
    policy = kwargs.pop("policy", POLICY)
    result = decide(policy, **(args | kwargs))
    assert result == (None if wait is None else pytest.approx(wait))


def test_policy_round_trips_as_plain_numbers() -> None:
    data = POLICY.to_dict()
    assert all(isinstance(v, int | float) for v in data.values())
    assert RetryPolicy.from_dict(data) == POLICY


@pytest.mark.parametrize(
    "bad",
    [{"max_attempts": 0}, {"jitter": 1.5}, {"total_timeout": -1}, {"initial_backoff": -0.1}],
)
def test_policy_rejects_nonsense(bad: dict) -> None:
    with pytest.raises(ValueError, match=next(iter(bad))):
        RetryPolicy(**bad)


def test_retryable_for_an_unknown_transport_error_is_false() -> None:
    assert not retryable(idempotent=True, status=None, error=httpx.UnsupportedProtocol("x"))


# -- through the client --------------------------------------------------------------------


@pytest.mark.parametrize("status", [429, 500, 502, 503, 504])
def test_get_is_retried_then_succeeds(status: int) -> None:
    script = Script(reply(status), reply(status), reply(200, {"name": "ds", "status": "connected"}))
    clock = FakeClock()
    dataset = sync_client(script, clock=clock).get_dataset("ds")
    assert dataset.name == "ds"
    assert len(script.requests) == 3
    assert clock.sleeps == [1.0, 2.0]  # EXACT: 1s doubling, no jitter


def test_a_500_on_a_get_is_retried_through_the_emulator(emulator: object, client) -> None:
    """Regression (issue 10, defect 13): a 500 on a read was not retried; a create POST
    answered 500 is still never sent twice."""
    from airflow_predibase.client.models import RepoRequest

    admin = emulator.admin  # type: ignore[attr-defined]
    client.create_repo(RepoRequest(name="r"))
    admin.add_fault("status", method="GET", path="/v2/repos/r", count=2, status=500)
    assert client.get_repo("r").name == "r"  # the third attempt got through
    # Had the client sent it again, the second attempt (no fault left) would have succeeded.
    admin.add_fault("status", method="POST", path="/v2/repos", count=1, status=500)
    with pytest.raises(OutcomeUnknownError):
        client.create_repo(RepoRequest(name="r2"))


def test_retry_after_is_honoured() -> None:
    script = Script(reply(429, headers={"Retry-After": "7"}), reply(200, {"data": []}))
    clock = FakeClock()
    assert sync_client(script, clock=clock).list_models() == []
    assert clock.sleeps == [7.0]


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (400, BadRequestError),
        (401, AuthenticationError),
        (404, NotFoundError),
        (422, BadRequestError),
    ],
)
def test_client_errors_fail_fast(status: int, error: type[Exception]) -> None:
    script = Script(reply(status, {"error": "no"}))
    clock = FakeClock()
    with pytest.raises(error):
        sync_client(script, clock=clock).get_dataset("ds")
    assert len(script.requests) == 1
    assert clock.sleeps == []


@pytest.mark.parametrize(
    "step",
    [
        fail(httpx.ReadTimeout),
        fail(httpx.WriteTimeout),
        fail(httpx.RemoteProtocolError),
        reply(500),
        reply(503),
        reply(502),
    ],
    ids=["read-timeout", "write-timeout", "dropped", "500", "503", "502"],
)
def test_ambiguous_create_is_not_retried(step) -> None:
    script = Script(step)
    with pytest.raises(OutcomeUnknownError) as info:
        sync_client(script).create_finetuning_job(JOB)
    assert len(script.requests) == 1
    assert info.value.__cause__ is not None  # chained to the httpx error or the ServerError
    assert "Look up what was created" in str(info.value)


def test_ambiguous_create_after_5xx_keeps_status_and_request_id() -> None:
    script = Script(reply(500, {"error": "boom"}, headers={"x-request-id": "r-9"}))
    with pytest.raises(OutcomeUnknownError) as info:
        sync_client(script).create_finetuning_job(JOB)
    assert (info.value.status_code, info.value.request_id) == (500, "r-9")
    assert isinstance(info.value.__cause__, ServerError)


@pytest.mark.parametrize(
    "first",
    [reply(429), fail(httpx.ConnectError), fail(httpx.ConnectTimeout)],
    ids=["429", "connect-error", "connect-timeout"],
)
def test_create_rejected_before_any_work_is_retried(first) -> None:
    script = Script(first, reply(200, JOB_JSON))
    assert sync_client(script).create_finetuning_job(JOB).id == "job-1"
    assert len(script.requests) == 2


def test_cancel_is_retried_like_an_idempotent_call() -> None:
    script = Script(reply(503), fail(httpx.ReadTimeout), reply(200, JOB_JSON))
    assert sync_client(script).cancel_finetuning_job("job-1").id == "job-1"
    assert len(script.requests) == 3


def test_serving_calls_are_retried() -> None:
    script = Script(reply(503), reply(200, {"generated_text": "hi"}))
    from airflow_predibase.client.models import GenerateRequest

    assert sync_client(script).generate("dep", GenerateRequest(inputs="x")).generated_text == "hi"
    assert len(script.requests) == 2


def test_an_unhealthy_deployment_is_an_answer_not_a_retry() -> None:
    script = Script(reply(503, {"error": "unhealthy", "error_type": "healthcheck"}))
    assert sync_client(script).health("dep") is False
    assert len(script.requests) == 1


@pytest.mark.parametrize(
    ("steps", "error"),
    [
        ([reply(503)] * 4, ServerError),
        ([fail(httpx.ReadTimeout)] * 4, APITimeoutError),
        ([fail(httpx.ConnectError)] * 4, APIConnectionError),
        ([reply(429, headers={"Retry-After": "3"})] * 4, RateLimitError),
    ],
    ids=["503", "read-timeout", "connect-error", "429"],
)
def test_attempts_are_bounded_and_the_last_error_is_mapped(steps, error) -> None:
    script = Script(*steps)
    with pytest.raises(error) as info:
        sync_client(script).list_datasets()
    assert len(script.requests) == EXACT.max_attempts
    if error is RateLimitError:
        assert info.value.retry_after == 3.0


def test_a_timeout_is_reported_as_a_timeout_not_a_generic_error() -> None:
    with pytest.raises(APITimeoutError):
        sync_client(
            Script(fail(httpx.ReadTimeout)), retry=RetryPolicy(max_attempts=1)
        ).list_models()


def test_total_time_is_bounded() -> None:
    policy = RetryPolicy(
        max_attempts=100, initial_backoff=1, max_backoff=4, jitter=0, total_timeout=10
    )
    script = Script(*[reply(503)] * 100)
    clock = FakeClock()
    with pytest.raises(ServerError):
        sync_client(script, clock=clock, retry=policy).list_datasets()
    # Waits 1, 2, 4 fit in 10 s; the next 4 would end at 11 s, so the client stops.
    assert clock.sleeps == [1, 2, 4]
    assert len(script.requests) == 4
    assert clock.now <= policy.total_timeout


def test_default_policy_comes_from_settings_max_retries() -> None:
    from predibase_fakes import SETTINGS

    from airflow_predibase.client import PredibaseClient

    client = PredibaseClient(SETTINGS)
    assert client.retry_policy.max_attempts == SETTINGS.max_retries + 1
    client.close()


def test_every_request_carries_a_finite_timeout() -> None:
    script = Script(reply(200, {"data": []}))
    sync_client(script).list_models()
    timeout = script.requests[0].extensions["timeout"]
    assert set(timeout) == {"connect", "read", "write", "pool"}
    assert all(isinstance(v, float) and 0 < v < 1000 for v in timeout.values())
