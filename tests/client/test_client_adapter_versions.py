"""Listing, archiving, unarchiving and deleting adapter versions: the sync and async clients
against the real emulator over HTTP, as `spec`, `platform` and `default`. Production's
`PUT|DELETE /v2/repos/{repo}/version/{tag}` are the paths in every dialect (the seed has
none; `emulator/routes_adapter_versions.py` serves them to a `spec` client)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from airflow_predibase.client import AsyncPredibaseClient, ClientSettings, PredibaseClient
from airflow_predibase.client import errors as pb_errors
from airflow_predibase.client._dialect import forget
from airflow_predibase.client.models import FinetuningJobRequest, RepoRequest
from airflow_predibase.emulator.server import EmulatorServer
from tests.taskkit import QUICK_PROFILE, STUCK_PROFILE

TRAIN = b"".join(
    json.dumps({"prompt": f"q{i}", "completion": f"a{i}"}).encode() + b"\n" for i in range(10)
)


@pytest.fixture(scope="module")
def servers() -> Iterator[dict[str, EmulatorServer]]:
    started: dict[str, EmulatorServer] = {}
    try:
        for dialect in ("spec", "platform", "default"):
            started[dialect] = EmulatorServer(profile="instant", dialect=dialect).start()
        yield started
    finally:
        for server in started.values():
            server.stop()


@pytest.fixture(params=["spec", "platform", "default"])
def server(request: pytest.FixtureRequest, servers: dict[str, EmulatorServer]) -> EmulatorServer:
    chosen = servers[request.param]
    chosen.reset()
    chosen.admin.set_profile(QUICK_PROFILE)
    forget()
    return chosen


def _settings(server: EmulatorServer) -> ClientSettings:
    return ClientSettings(
        token=server.token,
        base_url=server.control_url,
        serving_url=server.serving_url,
        tenant_id=server.tenant,
    )


def _trained(client: PredibaseClient, repo: str, count: int) -> None:
    """`count` completed versions of `repo`, numbered 1..count."""
    client.upload_dataset("train", TRAIN, "train.jsonl")
    while client.get_dataset("train").status != "connected":
        time.sleep(0.02)
    client.create_repo(RepoRequest(name=repo))
    for _ in range(count):
        job = client.create_finetuning_job(
            FinetuningJobRequest(base_model="qwen3-8b", dataset="train", repo=repo, epochs=1)
        )
        deadline = time.monotonic() + 20
        while not client.get_finetuning_job(job.id).status.is_terminal:
            assert time.monotonic() < deadline, "training never ended"
            time.sleep(0.05)


def test_list_archive_unarchive_delete_sync(server: EmulatorServer) -> None:
    with PredibaseClient(_settings(server)) as client:
        _trained(client, "support", 3)
        versions = client.list_adapter_versions("support")
        assert [v.adapter_id for v in versions] == ["support/1", "support/2", "support/3"]
        assert all(v.status.is_success and not v.archived for v in versions)

        archived = client.archive_adapter_version("support", 1)
        assert (archived.adapter_id, archived.archived) == ("support/1", True)
        # Archiving twice is archiving once.
        assert client.archive_adapter_version("support", 1).archived is True
        assert client.get_adapter_version("support", 1).archived is True
        listed = {v.version: v.archived for v in client.list_adapter_versions("support")}
        assert listed == {1: True, 2: False, 3: False}

        assert client.unarchive_adapter_version("support", 1).archived is False
        assert client.get_adapter_version("support", 1).archived is False

        assert client.delete_adapter_version("support", 2) is None
        assert [v.version for v in client.list_adapter_versions("support")] == [1, 3]
        with pytest.raises(pb_errors.NotFoundError, match="support/2"):
            client.get_adapter_version("support", 2)
        with pytest.raises(pb_errors.NotFoundError):
            client.delete_adapter_version("support", 2)


def test_the_same_through_the_async_client(server: EmulatorServer) -> None:
    with PredibaseClient(_settings(server)) as client:
        _trained(client, "support", 2)

    async def scenario() -> list[Any]:
        async with AsyncPredibaseClient(_settings(server)) as aclient:
            first = [v.adapter_id for v in await aclient.list_adapter_versions("support")]
            archived = (await aclient.archive_adapter_version("support", 2)).archived
            unarchived = (await aclient.unarchive_adapter_version("support", 2)).archived
            await aclient.delete_adapter_version("support", 1)
            left = [v.adapter_id for v in await aclient.list_adapter_versions("support")]
            return [first, archived, unarchived, left]

    assert asyncio.run(scenario()) == [["support/1", "support/2"], True, False, ["support/2"]]


def test_a_version_still_training_cannot_be_deleted(server: EmulatorServer) -> None:
    with PredibaseClient(_settings(server)) as client:
        _trained(client, "support", 1)
        server.admin.set_profile(STUCK_PROFILE)
        client.create_finetuning_job(
            FinetuningJobRequest(base_model="qwen3-8b", dataset="train", repo="support")
        )
        assert [v.version for v in client.list_adapter_versions("support")] == [1, 2]
        with pytest.raises(pb_errors.ConflictError, match="still training"):
            client.delete_adapter_version("support", 2)


def test_archive_names_a_missing_version_and_the_repo(server: EmulatorServer) -> None:
    with PredibaseClient(_settings(server)) as client:
        client.create_repo(RepoRequest(name="support"))
        assert client.list_adapter_versions("support") == []
        with pytest.raises(pb_errors.NotFoundError, match="support/7"):
            client.archive_adapter_version("support", 7)
        with pytest.raises(pb_errors.NotFoundError):
            client.list_adapter_versions("nowhere")


def test_the_calls_docs_operators_retention_md_shows(server: EmulatorServer) -> None:
    with PredibaseClient(_settings(server)) as client:
        _trained(client, "router", 1)
        versions = client.list_adapter_versions("router")  # archived too, oldest first
        client.archive_adapter_version("router", 1)  # hidden; its weights are kept
        client.unarchive_adapter_version("router", 1)
        client.delete_adapter_version("router", 1)  # for good; 409 while still training
        assert [v.adapter_id for v in versions] == ["router/1"]
        assert client.list_adapter_versions("router") == []
