"""Every client operation, in both API dialects, sync and async, against the real emulator.

The emulator runs over real HTTP as `--dialect spec` (the seed spec only), `platform`
(production's wire format, as the official SDK speaks it) and `default` (both). The client
runs with the default `dialect="auto"` (it probes once and must pick the server's dialect)
and, against `default`, forced to each dialect. One walk calls every public method of the
client; the same walk runs on the sync and the async client.
"""

from __future__ import annotations

import asyncio
import inspect
import json
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from airflow_predibase.client import AsyncPredibaseClient, ClientSettings, PredibaseClient
from airflow_predibase.client import errors as pb_errors
from airflow_predibase.client._dialect import forget
from airflow_predibase.client.models import (
    BatchInferenceJobRequest,
    ChatCompletionRequest,
    ChatMessage,
    CompletionRequest,
    DatasetRequest,
    DeploymentRequest,
    DeploymentUpdateRequest,
    FinetuningJobRequest,
    GenerateParameters,
    GenerateRequest,
    RepoRequest,
)
from airflow_predibase.emulator.server import EmulatorServer

TRAIN = b"".join(
    json.dumps({"prompt": f"q{i}", "completion": f"a{i}"}).encode() + b"\n" for i in range(20)
)
BATCH = b"".join(
    json.dumps(
        {
            "custom_id": f"row-{i}",
            "method": "POST",
            "url": "/v1/chat/completions",
            "body": {"model": "", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 8},
        }
    ).encode()
    + b"\n"
    for i in range(3)
)
#: Public client members that are not API operations.
NOT_OPERATIONS = {"close", "deployment_url", "resolve_dialect", "dialect"}
#: (server dialect, client setting) -> the dialect the client must end up speaking.
PAIRS = {
    ("spec", "auto"): "spec",
    ("platform", "auto"): "platform",
    ("default", "auto"): "platform",
    ("default", "spec"): "spec",
    ("default", "platform"): "platform",
}


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


def _settings(server: EmulatorServer, dialect: str, *, tenant: bool = True) -> ClientSettings:
    return ClientSettings(
        token=server.token,
        base_url=server.control_url,
        serving_url=server.url,
        # The seed spec has no user record to learn the tenant from.
        tenant_id=server.tenant if tenant else None,
        dialect=dialect,
    )


def _public_methods(cls: type) -> set[str]:
    return {
        name
        for name, _ in inspect.getmembers(cls, inspect.isfunction)
        if not name.startswith("_") and name not in NOT_OPERATIONS
    }


class Recorder:
    """Calls client methods by a lambda, sync or async alike, and notes each method used."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.used: set[str] = set()

    async def __call__(self, name: str, *args: Any, **kwargs: Any) -> Any:
        self.used.add(name)
        method: Callable[..., Any] = getattr(type(self.client), name)
        result = method(self.client, *args, **kwargs)
        if inspect.isawaitable(result):
            result = await result
        if isinstance(result, AsyncIterator):
            return [item async for item in result]
        if isinstance(result, Iterator):
            return list(result)
        return result


async def _until(call: Recorder, name: str, key: Any, done: Callable[[Any], bool]) -> Any:
    for _ in range(30):
        found = await call(name, *key) if isinstance(key, tuple) else await call(name, key)
        if done(found):
            return found
    raise AssertionError(f"{name}({key!r}) never got there: last {found!r}")


async def walk(call: Recorder, source: Path) -> None:
    models = await call("list_models")
    base = models[0].name

    ds = await call("upload_dataset", "train", TRAIN, "train.jsonl", description="d")
    assert ds.name == "train"
    await _until(call, "get_dataset", "train", lambda d: d.status.is_success)
    target = await call("begin_dataset_upload", "batch.jsonl", "application/jsonl")
    await call("put_upload_bytes", target.presigned_url, BATCH, "application/jsonl",
               target.required_headers)  # fmt: skip
    await call("complete_dataset_upload", "batch", target.upload_token, "rows")
    await _until(call, "get_dataset", "batch", lambda d: d.status.is_success)
    connected = await call("create_dataset", DatasetRequest(name="linked", source=str(source)))
    assert connected.name == "linked"
    assert {"train", "batch", "linked"} <= {d.name for d in await call("list_datasets")}

    repo = await call("create_repo", RepoRequest(name="support", description="d"))
    assert repo.name == "support"
    assert "support" in {r.name for r in await call("list_repos")}
    job = await call(
        "create_finetuning_job",
        FinetuningJobRequest(
            base_model=base, dataset="train", repo="support", epochs=1, description="marker-1"
        ),
    )
    assert job.id
    assert job.repo == "support"
    job = await _until(call, "get_finetuning_job", job.id, lambda j: j.status.is_terminal)
    assert job.status.is_success, job
    assert job.adapter_id == "support/1", job
    assert job.base_model == base
    assert job.description == "marker-1"
    assert job.id in {j.id for j in await call("list_finetuning_jobs")}
    # training records: production's only (None, with nothing sent, where the client speaks
    # the seed spec); tests/client/test_client_training_records.py in depth
    records = [
        await call(
            "estimate_finetuning_cost", FinetuningJobRequest(base_model=base, dataset="train")
        ),
        await call("get_finetuning_timeline", job.id),
        await call("read_finetuning_metrics", job.id),
    ]
    seed = call.client.dialect.dialect == "spec"
    assert [r is None for r in records] == [seed] * 3, records
    version = await call("get_adapter_version", "support", 1)
    assert version.adapter_id == "support/1"
    assert version.status.is_success, version
    assert version.finetuning_job == job.id
    assert [v.version for v in (await call("get_repo", "support")).versions] == [1]
    # adapter versions (retention): tests/client/test_client_adapter_versions.py in depth
    assert [v.adapter_id for v in await call("list_adapter_versions", "support")] == ["support/1"]
    assert (await call("archive_adapter_version", "support", 1)).archived is True
    assert (await call("unarchive_adapter_version", "support", 1)).archived is False
    await call("create_repo", RepoRequest(name="scratch"))
    other = await call(
        "create_finetuning_job",
        FinetuningJobRequest(base_model=base, dataset="train", repo="scratch"),
    )
    cancelled = await call("cancel_finetuning_job", other.id)
    assert cancelled.id == other.id
    assert cancelled.status.is_winding_down or cancelled.status.is_cancelled

    dep = await call(
        "create_deployment",
        DeploymentRequest(
            name="dep", base_model=base, min_replicas=0, max_replicas=1, description="nightly"
        ),
    )
    assert dep.name == "dep"
    assert dep.base_model == base
    dep = await _until(call, "get_deployment", "dep", lambda d: d.status.is_serving)
    assert dep.max_replicas == 1, dep
    assert "dep" in {d.name for d in await call("list_deployments")}
    updated = await call("update_deployment", "dep", DeploymentUpdateRequest(max_replicas=2))
    assert updated.name == "dep"
    assert updated.max_replicas == 2, updated
    await _until(call, "get_deployment", "dep", lambda d: d.status.is_serving)

    gen = GenerateRequest(inputs="hi", parameters=GenerateParameters(max_new_tokens=8))
    assert (await call("generate", "dep", gen)).generated_text
    assert (await call("generate_compat", "dep", gen)).generated_text
    assert (await call("generate_stream", "dep", gen))[-1].generated_text
    chat = ChatCompletionRequest(
        model="support/1", messages=[ChatMessage(role="user", content="hi")], max_tokens=8
    )
    assert (await call("chat_completion", "dep", chat)).choices
    assert await call("chat_completion_stream", "dep", chat)
    completion = CompletionRequest(prompt="hi", model="", max_tokens=8)
    assert (await call("completion", "dep", completion)).choices
    assert await call("completion_stream", "dep", completion)
    assert await call("health", "dep") is True
    assert await call("info", "dep")

    batch = await call(
        "create_batch_inference_job",
        BatchInferenceJobRequest(base_model=base, dataset="batch", description="marker-2"),
    )
    assert batch.id
    assert (batch.description, batch.dataset) == ("marker-2", "batch"), batch
    batch = await _until(call, "get_batch_inference_job", batch.id, lambda b: b.status.is_terminal)
    assert batch.status.is_success, batch
    assert batch.id in {b.id for b in await call("list_batch_inference_jobs")}
    assert (await call("get_batch_inference_results", batch.id)).url
    rows = await call("download_batch_results", batch.id)
    assert sorted(r.custom_id for r in rows) == ["row-0", "row-1", "row-2"]
    doomed = await call(
        "create_batch_inference_job", BatchInferenceJobRequest(base_model=base, dataset="batch")
    )
    assert (await call("cancel_batch_inference_job", doomed.id)).id == doomed.id

    await call("delete_deployment", "dep")
    await call("delete_adapter_version", "support", 1)
    assert await call("list_adapter_versions", "support") == []
    await call("create_repo", RepoRequest(name="empty"))
    await call("delete_repo", "empty")


@pytest.mark.parametrize("kind", ["sync", "async"])
@pytest.mark.parametrize(("server_dialect", "client_dialect"), list(PAIRS))
def test_every_operation_in_every_dialect(
    servers: dict[str, EmulatorServer],
    tmp_path: Path,
    server_dialect: str,
    client_dialect: str,
    kind: str,
) -> None:
    server = servers[server_dialect]
    server.reset()
    forget()
    source = tmp_path / "linked.jsonl"
    source.write_bytes(TRAIN)
    # Production's user record names the tenant: only the seed needs it in the settings.
    settings = _settings(
        server, client_dialect, tenant=PAIRS[server_dialect, client_dialect] == "spec"
    )
    chosen: list[Any] = []

    async def scenario() -> set[str]:
        if kind == "sync":
            with PredibaseClient(settings, on_dialect=chosen.append) as client:
                recorder = Recorder(client)
                await walk(recorder, source)
        else:
            async with AsyncPredibaseClient(settings, on_dialect=chosen.append) as aclient:
                recorder = Recorder(aclient)
                await walk(recorder, source)
        return recorder.used

    used = asyncio.run(scenario())
    assert used == _public_methods(PredibaseClient) == _public_methods(AsyncPredibaseClient)
    assert [c.dialect for c in chosen] == [PAIRS[server_dialect, client_dialect]]
    assert chosen[0].detected is (client_dialect == "auto")


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_a_client_forced_to_the_other_dialect_gets_a_clear_4xx(
    servers: dict[str, EmulatorServer], kind: str
) -> None:
    server = servers["spec"]
    server.reset()
    request = FinetuningJobRequest(base_model="qwen3-8b", dataset="train", repo="r")

    async def scenario() -> None:
        if kind == "sync":
            with PredibaseClient(_settings(server, "platform")) as client:
                client.create_finetuning_job(request)
        else:
            async with AsyncPredibaseClient(_settings(server, "platform")) as aclient:
                await aclient.create_finetuning_job(request)

    with pytest.raises(pb_errors.BadRequestError, match="speaks the 'spec' dialect"):
        asyncio.run(scenario())
