"""The emulator's per-tenant rate limit, and the client's request budget against it.

The first tests run on the module's manual clock, so the bucket refills only when the test
moves time. The last one is real HTTP on a real clock: many async waits on one connection
whose budget is set higher than the emulator allows learn the limit from the first 429s and
then send no request that gets another, and every wait completes.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import httpx
import pytest
from emulator_testkit import Emu, sentiment_rows

from airflow_predibase.client import (
    AsyncPredibaseClient,
    ClientSettings,
    PredibaseClient,
    RetryPolicy,
)
from airflow_predibase.client._budget import BudgetRegistry
from airflow_predibase.client.models import FinetuningJobRequest, FinetuningJobStatus, RepoRequest
from airflow_predibase.emulator import EmulatorServer
from airflow_predibase.emulator.config import EmulatorConfig
from tests.taskkit import QUICK_PROFILE

JOBS = "/finetuning/jobs"


def test_past_the_limit_a_429_in_the_control_planes_shape(emu: Emu) -> None:
    emu.admin.set_rate_limit(3)
    assert [emu.control.get(JOBS).status_code for _ in range(3)] == [200] * 3
    limited = emu.control.get(JOBS)
    assert limited.status_code == 429
    assert limited.json() == {"error": "rate limit exceeded: 3 requests per second for this tenant"}
    assert limited.headers["retry-after"] == "1"
    assert limited.headers["x-ratelimit-limit"] == "3"
    assert limited.headers["x-ratelimit-remaining"] == "0"
    assert limited.headers["x-ratelimit-reset"] == "1"
    assert emu.admin.rate_limit() == {"requests_per_second": 3, "allowed": 3, "limited": 1}
    emu.advance(0.5)  # one request's worth back in the bucket (1/3 s), not two
    assert emu.control.get(JOBS).status_code == 200
    assert emu.control.get(JOBS).status_code == 429


def test_the_control_api_is_never_limited_and_reset_lifts_the_limit(emu: Emu) -> None:
    emu.admin.set_rate_limit(1)
    assert emu.control.get(JOBS).status_code == 200
    assert emu.control.get(JOBS).status_code == 429
    for _ in range(5):
        emu.admin.state()
    assert emu.admin.rate_limit()["limited"] == 1
    emu.admin.reset()  # back to the configured limit: none
    assert emu.admin.rate_limit() == {"requests_per_second": None, "allowed": 0, "limited": 0}
    assert all(emu.control.get(JOBS).status_code == 200 for _ in range(5))


def test_a_bad_limit_is_a_422_naming_the_field(emu: Emu) -> None:
    answer = emu.control.put(
        f"{emu.server.url}/__emulator__/rate-limit", json={"requests_per_second": 0}
    )
    assert answer.status_code == 422
    assert "requests_per_second" in answer.text


def test_the_config_field_and_the_cli_flag() -> None:
    from airflow_predibase.emulator.__main__ import parse_args

    assert parse_args(["--rate-limit", "100"]).rate_limit == 100.0
    assert parse_args([]).rate_limit is None
    assert EmulatorConfig(rate_limit=100).rate_limit == 100
    with pytest.raises(ValueError, match="rate_limit"):
        EmulatorConfig(rate_limit=0)


# -- the client's budget against it, on a real clock ------------------------------------------

LIMIT = 10  # requests/s the emulator allows the tenant
BUDGET = 20.0  # requests/s the connection is set to: too many, as a free tier's would be
WAITS = 20
POLL_EVERY = 0.5  # 20 waits ask 40 requests/s: the budget must stretch them
#: Training lasts a second, so every wait polls while the budget is stretched.
PROFILE = {**QUICK_PROFILE, "name": "rate-limit-test", "finetuning_training": 1.0}


class Recording(httpx.AsyncBaseTransport):
    """The real transport, noting when each request went and when its whole answer was in
    (what the client can act on: a 429's body still on the wire is not known yet)."""

    def __init__(self) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.exchanges: list[tuple[float, float, int]] = []  # sent, answered, status

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        sent = time.monotonic()
        response = await self.inner.handle_async_request(request)
        raw = b"".join([chunk async for chunk in response.aiter_raw()])
        await response.aclose()
        self.exchanges.append((sent, time.monotonic(), response.status_code))
        return httpx.Response(
            response.status_code, headers=response.headers, content=raw, request=request
        )

    async def aclose(self) -> None:
        await self.inner.aclose()

    def late_429s(self) -> tuple[int, int]:
        """429s in all, and 429s to requests sent after the first 429 came back."""
        limited = [(sent, answered) for sent, answered, status in self.exchanges if status == 429]
        if not limited:
            return 0, 0
        first_back = min(answered for _, answered in limited)
        return len(limited), sum(1 for sent, _ in limited if sent > first_back)


def _jobs(server: EmulatorServer, count: int) -> list[str]:
    settings = ClientSettings(token=server.token, base_url=server.control_url, dialect="spec")
    with PredibaseClient(settings) as client:
        client.upload_dataset("budget-data", _rows(), "train.jsonl")
        deadline = time.monotonic() + 10
        while client.get_dataset("budget-data").status != "connected":
            assert time.monotonic() < deadline, "the dataset did not connect"
            time.sleep(0.02)
        client.create_repo(RepoRequest(name="budget"))
        request = FinetuningJobRequest(base_model="qwen3-8b", dataset="budget-data", repo="budget")
        return [client.create_finetuning_job(request).id for _ in range(count)]


def _rows() -> bytes:
    import json

    return "".join(json.dumps(row) + "\n" for row in sentiment_rows()).encode()


async def _wait_all(server: EmulatorServer, job_ids: list[str], transport: Recording) -> list[Any]:
    settings = ClientSettings(
        token=server.token,
        base_url=server.control_url,
        dialect="spec",
        max_requests_per_second=BUDGET,
    )
    budgets = BudgetRegistry()  # this test's own, on the real clock
    retry = RetryPolicy(max_attempts=6, total_timeout=300)
    limiter = asyncio.Semaphore(4)  # few permits, as the triggerer's pool has: requests queue
    async with httpx.AsyncClient(transport=transport) as http:

        async def wait(job_id: str) -> FinetuningJobStatus:
            client = AsyncPredibaseClient(
                settings, http_client=http, retry=retry, budgets=budgets, limiter=limiter
            )
            while True:
                job = await client.get_finetuning_job(job_id)
                if job.status.is_terminal:
                    return job.status
                await asyncio.sleep(POLL_EVERY)

        return await asyncio.wait_for(asyncio.gather(*(wait(j) for j in job_ids)), 120)


def test_many_waits_learn_the_limit_from_the_first_429s_and_all_complete(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with EmulatorServer(profile=PROFILE) as server:
        job_ids = _jobs(server, WAITS)
        server.admin.set_rate_limit(LIMIT)
        transport = Recording()
        with caplog.at_level(logging.WARNING, logger="airflow_predibase.client"):
            statuses = asyncio.run(_wait_all(server, job_ids, transport))
        counted = server.admin.rate_limit()
    assert statuses == [FinetuningJobStatus.COMPLETED] * WAITS  # every wait completed
    total, late = transport.late_429s()
    assert counted["limited"] == total >= 1  # the budget was set too high: it had to learn
    assert late == 0, transport.exchanges  # ...and after the first 429 came back, no more
    lowered = [r.getMessage() for r in caplog.records if "answered 429" in r.getMessage()]
    assert len(lowered) == 1, lowered  # one 429 storm, one change, logged once
    assert "limit of 10/s" in lowered[0]
