"""The client's training records (cost estimate, timeline, metrics stream), both clients,
against the emulator over real HTTP, and the estimate's wire body as the SDK sends it."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import httpx
import pytest

from airflow_predibase.client import AsyncPredibaseClient, ClientSettings, PredibaseClient
from airflow_predibase.client.models import FinetuningJobRequest, RepoRequest
from tests.taskkit import upload

ROWS = [{"prompt": f"ticket {i}", "completion": "shipping"} for i in range(16)]
REQUEST = FinetuningJobRequest(base_model="qwen3-8b", dataset="rows", repo="r", epochs=2)


@pytest.fixture
def finished_job(emulator: Any, client: Any) -> str:
    upload(client, "rows", ROWS)
    client.create_repo(RepoRequest(name="r"))
    job = client.create_finetuning_job(REQUEST)
    deadline = time.monotonic() + 20
    while not client.get_finetuning_job(job.id).status.is_terminal:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    return str(job.id)


def test_both_clients_read_the_same_records(
    emulator: Any, emulator_dialect: str, client: Any, finished_job: str
):
    async def read_async() -> tuple[Any, Any, Any]:
        async with AsyncPredibaseClient(client.settings) as aclient:
            return (
                await aclient.estimate_finetuning_cost(REQUEST),
                await aclient.get_finetuning_timeline(finished_job),
                await aclient.read_finetuning_metrics(finished_job),
            )

    sync = (
        client.estimate_finetuning_cost(REQUEST),
        client.get_finetuning_timeline(finished_job),
        client.read_finetuning_metrics(finished_job),
    )
    assert asyncio.run(read_async()) == sync
    estimate, timeline, metrics = sync
    if emulator_dialect == "spec":
        assert sync == (None, None, None)  # the seed spec has none of them
        return
    assert estimate is not None
    assert estimate.cost == pytest.approx(0.02 * 2 * 2)  # 2 epochs x 2 steps, as emulated
    assert timeline is not None
    assert list(timeline.started) == ["queued", "training", "completed"]
    assert metrics
    assert metrics[-1].is_completed
    assert metrics[-1].total_tokens_used


def test_the_estimate_is_a_get_with_the_sdks_json_body():
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"estimatedCost": 12.5, "estimatedDuration": "1h"})

    settings = ClientSettings(token="pb_x", base_url="https://api.example/v2", dialect="platform")
    with PredibaseClient(
        settings, http_client=httpx.Client(transport=httpx.MockTransport(answer))
    ) as c:
        estimate = c.estimate_finetuning_cost(REQUEST)
    assert estimate is not None
    assert estimate.cost == 12.5
    [request] = seen
    assert (request.method, request.url.path) == ("GET", "/v2/finetuning/jobs/cost-estimate")
    assert json.loads(request.content) == {
        "baseModel": "qwen3-8b",
        "datasetName": "rows",
        "taskType": "sft",
        "adapterType": "lora",
        "epochs": 2,
        "trainSteps": None,
        "numGenerations": None,
        "maxTokens": None,
    }


@pytest.mark.parametrize(
    ("status", "body"), [(404, {"error": "no route"}), (200, {"estimatedCost": -1})]
)
def test_no_estimate_is_none(status: int, body: dict[str, Any]):
    transport = httpx.MockTransport(lambda _: httpx.Response(status, json=body))
    settings = ClientSettings(token="pb_x", base_url="https://api.example/v2", dialect="platform")
    with PredibaseClient(settings, http_client=httpx.Client(transport=transport)) as c:
        estimate = c.estimate_finetuning_cost(REQUEST)
    assert estimate is None or estimate.cost is None
