"""The emulator's training records over real HTTP and a real websocket: the timeline, the
cost estimate and the metrics stream (production's), and what a `spec` server answers."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from airflow_predibase.client.models import FinetuningJobRequest, RepoRequest
from tests.taskkit import upload

ROWS = [{"prompt": f"ticket {i}", "completion": "shipping"} for i in range(40)]


@pytest.fixture
def finished_job(emulator: Any, client: Any) -> str:
    import time

    upload(client, "rows", ROWS)
    client.create_repo(RepoRequest(name="r"))
    job = client.create_finetuning_job(
        FinetuningJobRequest(base_model="qwen3-8b", dataset="rows", repo="r")
    )
    deadline = time.monotonic() + 20
    while not client.get_finetuning_job(job.id).status.is_terminal:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    return str(job.id)


def raw_stream(emulator: Any, job_id: str) -> list[dict[str, Any]]:
    from websockets.sync.client import connect

    url = emulator.url.replace("http://", "ws://") + f"/v2/finetuning/jobs/{job_id}/metrics/stream"
    with connect(url, additional_headers={"Authorization": f"Bearer {emulator.token}"}) as ws:
        return [json.loads(m) for m in ws]


def test_the_stream_replays_every_checkpoint_then_ends(
    emulator: Any, emulator_dialect: str, finished_job: str
):
    if emulator_dialect == "spec":
        pytest.skip("production's stream")
    messages = raw_stream(emulator, finished_job)
    *checkpoints, final = messages
    assert [m["meta"]["is_completed"] for m in messages] == [False] * len(checkpoints) + [True]
    numbers = [m["data"]["checkpoint_number"] for m in checkpoints]
    assert numbers == list(range(1, len(checkpoints) + 1))
    validation = [m["data"]["validation_metrics_loss"] for m in checkpoints]
    best = final["data"]["best_eval_metric_checkpoint_number"]
    assert final["data"]["best_validation_metrics_loss"] == min(validation)
    assert validation[best - 1] == min(validation)
    tokens = [m["data"]["total_tokens_used"] for m in checkpoints]
    assert tokens == sorted(tokens)
    assert tokens[0] > 0
    # A second connection replays the same history: the curve is stored, not redrawn.
    assert raw_stream(emulator, finished_job) == messages


def test_the_timeline_and_the_estimate(emulator: Any, emulator_dialect: str, finished_job: str):
    http = httpx.Client(
        base_url=emulator.url, headers={"Authorization": f"Bearer {emulator.token}"}
    )
    timeline = http.get(f"/v2/finetuning/jobs/{finished_job}/timeline")
    estimate = http.request(
        "GET",
        "/v2/finetuning/jobs/cost-estimate",
        json={"baseModel": "qwen3-8b", "datasetName": "rows", "epochs": 3},
    )
    if emulator_dialect == "spec":
        for answer in (timeline, estimate):
            assert answer.status_code == 400
            assert "'spec' dialect" in answer.json()["error"]
        return
    assert list(timeline.json()) == ["queued", "training", "completed"]
    body = estimate.json()
    assert body["estimatedCost"] > 0
    assert body["estimatedDuration"]
