"""Each fault kind, over real loopback HTTP, as a client would meet it."""

from __future__ import annotations

import json

import httpx
import pytest
from emulator_testkit import BASE_MODEL, Emu, sentiment_rows

from airflow_predibase.emulator.in_process import InProcessEmulator

JOBS = "/v2/finetuning/jobs*"


def test_429_with_retry_after_for_the_next_n_requests(emu: Emu) -> None:
    emu.admin.add_fault("status", method="GET", path=JOBS, status=429, retry_after=2, count=2)
    first, second, third = (emu.control.get("/finetuning/jobs") for _ in range(3))
    for limited in (first, second):
        assert limited.status_code == 429
        assert limited.headers["retry-after"] == "2"
        assert "error" in limited.json()
    assert third.status_code == 200
    assert emu.admin.faults()["rules"] == []


def test_faults_match_method_and_path(emu: Emu) -> None:
    emu.admin.add_fault("status", method="POST", path="/v2/repos", status=500)
    assert emu.control.get("/repos").status_code == 200
    assert emu.control.get("/finetuning/jobs").status_code == 200
    assert emu.control.post("/repos", json={"name": "r"}).status_code == 500
    assert emu.control.post("/repos", json={"name": "r"}).status_code == 200


@pytest.mark.parametrize(
    ("status", "error_type"), [(500, "incomplete_generation"), (502, None), (503, "healthcheck")]
)
def test_server_errors_in_each_planes_shape(emu: Emu, status: int, error_type: str | None) -> None:
    emu.admin.add_fault("status", status=status, count=2)
    control = emu.control.get("/models")
    assert control.status_code == status
    assert set(control.json()) == {"error"}
    serving = emu.serving(BASE_MODEL).post("/generate", json={"inputs": "x"})
    assert serving.status_code == status
    assert serving.json().get("error_type") == error_type
    if status == 503:
        assert serving.headers["retry-after"] == "1"


def test_a_gateway_error_with_a_non_json_body(emu: Emu) -> None:
    emu.admin.add_fault("non_json", status=502)
    answer = emu.control.get("/models")
    assert answer.status_code == 502
    assert answer.headers["content-type"].startswith("text/html")
    with pytest.raises(json.JSONDecodeError):
        answer.json()


def test_a_slow_response_trips_a_short_client_timeout(emu: Emu) -> None:
    emu.admin.add_fault("slow", path="/v2/models", delay=2.0, count=2)
    with pytest.raises(httpx.ReadTimeout):
        emu.control.get("/models", timeout=0.2)
    patient = emu.control.get("/models", timeout=10)
    assert patient.status_code == 200  # slow, not broken


def test_a_dropped_connection_sends_no_response(emu: Emu) -> None:
    emu.admin.add_fault("drop", path="/v2/models")
    with pytest.raises(httpx.RemoteProtocolError, match="without sending"):
        emu.control.get("/models")
    assert emu.control.get("/models").status_code == 200


def test_a_create_whose_answer_is_lost_still_creates_the_job(emu: Emu) -> None:
    emu.dataset("reviews", sentiment_rows(8))
    emu.repo("r")
    emu.admin.add_fault("drop_after", method="POST", path="/v2/finetuning/jobs")
    with pytest.raises(httpx.RemoteProtocolError):
        emu.job("r", "reviews", description="idempotency-key-42")
    jobs = emu.ok(emu.control.get("/finetuning/jobs"))["data"]
    assert [j["description"] for j in jobs] == ["idempotency-key-42"]
    emu.advance(10)
    assert emu.ok(emu.control.get(f"/finetuning/jobs/{jobs[0]['id']}"))["status"] == "completed"


def test_an_error_in_the_middle_of_a_lorax_stream(emu: Emu) -> None:
    adapter = emu.adapter("r", [{"prompt": "count", "completion": "one two three four five"}])
    emu.admin.add_fault("stream_error", path="*/generate_stream", after_tokens=2)
    answer = emu.serving(BASE_MODEL).post(
        "/generate_stream", json={"inputs": "count", "parameters": {"adapter_id": adapter}}
    )
    assert answer.status_code == 200  # the stream had begun
    events = [json.loads(line[5:]) for line in answer.text.splitlines() if line.startswith("data:")]
    assert [e["token"]["text"] for e in events[:2]] == ["one ", "two "]
    assert events[2] == {
        "error": "Request failed during generation: emulated fault",
        "error_type": "incomplete_generation",
    }
    assert len(events) == 3


def test_seeded_chaos_fails_the_same_requests_every_time(emu: Emu) -> None:
    def run() -> list[str]:
        outcomes = []
        for _ in range(30):
            try:
                outcomes.append(str(emu.control.get("/models").status_code))
            except httpx.TransportError:
                outcomes.append("dropped")
        return outcomes

    emu.admin.chaos(0.5, seed=7, kinds=["429", "503", "drop"])
    first = run()
    emu.admin.chaos(0.5, seed=7, kinds=["429", "503", "drop"])
    assert run() == first
    assert {"200", "429", "503", "dropped"} == set(first)
    emu.admin.stop_chaos()
    assert {emu.control.get("/models").status_code for _ in range(10)} == {200}


def test_the_control_api_is_never_faulted(emu: Emu) -> None:
    emu.admin.add_fault("status", status=503, count=5)
    emu.admin.chaos(1.0)
    assert emu.admin.state()["faults"]["rules"][0]["remaining"] == 5
    emu.admin.clear_faults()
    assert emu.admin.faults() == {"rules": [], "chaos": None}


def test_bad_fault_rules_are_refused(emu: Emu) -> None:
    with pytest.raises(RuntimeError, match="422"):
        emu.admin.add_fault("explode")
    with pytest.raises(RuntimeError, match="422"):
        emu.admin.add_fault("status", status=200)


async def test_without_a_socket_a_drop_raises_in_the_caller(
    predibase_emulator_app: InProcessEmulator,
) -> None:
    backend = predibase_emulator_app.app.backend
    from airflow_predibase.emulator.faults import FaultRule

    backend.faults.add(FaultRule(kind="drop"))
    async with predibase_emulator_app.async_client() as client:
        with pytest.raises(ConnectionResetError):
            await client.get("/v2/models")
        assert (await client.get("/v2/models")).status_code == 200
