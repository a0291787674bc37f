"""Production's wire format at the transport seam: the bodies the official SDK sends, the
answers it reads, and how the client chooses its dialect.

The expected request bodies below were printed by `predibase==2025.10.3` itself
(`FinetuningJobs.create`, `Deployments.create` / `.update`, `beta.batch_inference.create`
build them from `GRPOConfig`, `DeploymentConfig`, `UpdateDeploymentConfig`,
`BatchInferenceServerConfig`; nulls dropped, as this client never sends them). The answers
are the shapes the SDK's models read (`uuid`, camelCase, `accelerator.id`, `model.name`,
`finetuningJob.uuid`, `{"data": ...}`).
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from predibase_fakes import TOKEN, Script, async_client, reply, sync_client
from sdk_reward import exact_match

from airflow_predibase.client import ClientSettings, errors
from airflow_predibase.client._dialect import cached, forget
from airflow_predibase.client.models import (
    AdapterVersion,
    BatchInferenceJob,
    BatchInferenceJobRequest,
    Dataset,
    Deployment,
    DeploymentRequest,
    DeploymentUpdateRequest,
    FinetuningJob,
    FinetuningJobRequest,
    Repo,
)

PLATFORM = ClientSettings(token=TOKEN, tenant_id="tenant1", dialect="platform")
AUTO = ClientSettings(token=TOKEN)

# -- what the SDK sends --------------------------------------------------------------------

SDK_FINETUNE = {
    "params": {
        "base_model": "qwen3-8b",
        "adapter": "lora",
        "task": "grpo",
        "epochs": 2,
        "learning_rate": 0.0001,
        "lr_scheduler": {"type": "cosine"},
        "warmup_ratio": 0.1,
        "effective_batch_size": 16,
        "beta": 0.04,
        "num_generations": 4,
        "sampling_params": {"temperature": 0.9, "max_tokens": 64},
        "rewardFns": {
            "runtime": {"packages": ["rapidfuzz==3.9.0"]},
            "functions": {
                "exact_match": {
                    "encodedFn": "ZGVmIGV4YWN0X21hdGNoKHByb21wdCwgY29tcGxldGlvbiwgZXhhbXBsZSk6Ci"
                    "AgICByZXR1cm4gZmxvYXQoY29tcGxldGlvbi5zdHJpcCgpID09IGV4YW1wbGVbImNvbXBsZ"
                    "XRpb24iXS5zdHJpcCgpKQo="
                }
            },
        },
        "secrets": {"API_KEY": "s3cret"},
    },
    "dataset": "train",
    "continueFromVersion": "support/1",
    "repo": "support",
    "description": "marker",
    "computeSpec": {"region": "us-west-2", "requests": {"trainer": {"sku": "a100_80gb_100"}}},
}
SDK_DEPLOY = {
    "name": "dep",
    "config": {
        "baseModel": "qwen3-8b",
        "customArgs": ["--x"],
        "cooldownTime": 600,
        "hfToken": "hf_abc",
        "minReplicas": 0,
        "maxReplicas": 2,
        "scaleUpRequestThreshold": 4,
        "maxTotalTokens": 4096,
        "loraxImageTag": "v1",
        "requestLoggingEnabled": True,
        "directIngress": False,
        "preloadedAdapters": ["support/1"],
        "prefixCaching": True,
        "backend": "v2",
        "usesGuaranteedCapacity": False,
        "maxNumBatchedTokens": 8192,
        "mergeAdapter": False,
        "computeSpec": {"requests": {"inference": {"sku": "a10_24gb_100"}}, "region": "us-east-1"},
        "quantization": "fp8",
    },
    "description": "nightly",
}
SDK_UPDATE = {"config": {"cooldownTime": 60, "maxReplicas": 3}, "description": "d2"}
SDK_BATCH = {
    "dataset": "batch",
    "serverConfig": {
        "customArgs": ["--y"],
        "hfToken": "hf_abc",
        "loraxImageTag": "v1",
        "baseModel": "qwen3-8b",
        "quantization": "fp8",
        "backend": "v2",
    },
}

# -- what the SDK reads --------------------------------------------------------------------

PLATFORM_JOB = {
    "uuid": "job-uuid",
    "baseModel": "qwen3-8b",
    "datasetName": "train",
    "description": "marker",
    "targetRepoName": "support",
    "targetVersionTag": 2,
    "accelerator": {"id": "a100_80gb_100"},
    "status": "completed",
    "params": {"base_model": "qwen3-8b", "adapter": "lora", "task": "grpo", "epochs": 2},
}
PLATFORM_DEPLOYMENT = {
    "data": {
        "name": "dep",
        "uuid": "dep-uuid",
        "description": "nightly",
        "type": "dedicated",
        "status": "ready",
        "model": {"name": "qwen3-8b", "maxInputLength": 4096},
        "accelerator": {"id": "a10_24gb_100"},
        "quantization": "fp8",
        "currentReplicas": 1,
        "config": {
            "baseModel": "qwen3-8b",
            "minReplicas": 0,
            "maxReplicas": 2,
            "scaleUpRequestThreshold": 4,
            "customArgs": ["--x"],
        },
        "usesGuaranteedCapacity": False,
    }
}
PLATFORM_BATCH = {
    "uuid": "batch-uuid",
    "originalRequest": {"dataset": "batch", "serverConfig": {"baseModel": "qwen3-8b"}},
    "status": "running",
    "error": None,
    "resultPath": "s3://bucket/out",
}
USER = {
    "id": 1,
    "username": "ada",
    "uuid": "user-uuid",
    "tenant": {"name": "Acme", "shortCode": "acme42", "subscription": {"tier": "paid"}},
}


@pytest.fixture(autouse=True)
def _fresh_detection() -> Iterator[None]:
    forget()
    yield
    forget()


def _body(request: httpx.Request) -> Any:
    return json.loads(request.content)


def _grpo() -> FinetuningJobRequest:
    return FinetuningJobRequest(
        base_model="qwen3-8b",
        dataset="train",
        repo="support",
        adapter_type="lora",
        task="grpo",
        epochs=2,
        learning_rate=0.0001,
        lr_scheduler={"type": "cosine"},
        warmup_ratio=0.1,
        effective_batch_size=16,
        beta=0.04,
        num_generations=4,
        sampling_params={"temperature": 0.9, "max_tokens": 64},
        reward_fns={"runtime": {"packages": ["rapidfuzz==3.9.0"]}, "functions": [exact_match]},
        secrets={"API_KEY": "s3cret"},
        continue_from_version="support/1",
        compute_spec={"region": "us-west-2", "requests": {"trainer": {"sku": "a100_80gb_100"}}},
        description="marker",
    )


def _deployment() -> DeploymentRequest:
    return DeploymentRequest(
        name="dep",
        base_model="qwen3-8b",
        custom_args=["--x"],
        cooldown_time=600,
        hf_token="hf_abc",
        min_replicas=0,
        max_replicas=2,
        scale_up_threshold=4,
        max_total_tokens=4096,
        lorax_image_tag="v1",
        request_logging_enabled=True,
        direct_ingress=False,
        preloaded_adapters=["support/1"],
        prefix_caching=True,
        backend="v2",
        uses_guaranteed_capacity=False,
        max_num_batched_tokens=8192,
        merge_adapter=False,
        compute_spec={"requests": {"inference": {"sku": "a10_24gb_100"}}, "region": "us-east-1"},
        quantization="fp8",
        description="nightly",
    )


def _batch() -> BatchInferenceJobRequest:
    return BatchInferenceJobRequest(
        base_model="qwen3-8b",
        dataset="batch",
        custom_args=["--y"],
        hf_token="hf_abc",
        lorax_image_tag="v1",
        quantization="fp8",
        backend="v2",
    )


# -- requests ------------------------------------------------------------------------------


def test_a_finetuning_job_is_sent_as_the_sdk_sends_it_and_read_as_it_reads_it() -> None:
    script = Script(reply(200, PLATFORM_JOB))
    job = sync_client(script, settings=PLATFORM).create_finetuning_job(_grpo())
    (request,) = script.requests
    assert (request.method, request.url.path) == ("POST", "/v2/finetuning/jobs")
    assert _body(request) == SDK_FINETUNE
    assert (job.id, job.status.is_success, job.adapter_id) == ("job-uuid", True, "support/2")
    assert (job.base_model, job.dataset, job.description) == ("qwen3-8b", "train", "marker")
    assert (job.adapter_type, job.task, job.accelerator) == ("lora", "grpo", "a100_80gb_100")


def test_a_deployment_is_created_and_updated_as_the_sdk_does_then_read_back() -> None:
    # The SDK ignores what the writes answer and reads the deployment: so does the client,
    # unless the answer already is one.
    script = Script(
        reply(200, {}),
        reply(200, PLATFORM_DEPLOYMENT),
        reply(200, {"message": "ok"}),
        reply(200, PLATFORM_DEPLOYMENT),
    )
    client = sync_client(script, settings=PLATFORM)
    created = client.create_deployment(_deployment())
    update = DeploymentUpdateRequest(max_replicas=3, cooldown_time=60, description="d2")
    client.update_deployment("dep", update)
    sent = [(r.method, r.url.path) for r in script.requests]
    assert sent == [
        ("POST", "/v2/deployments"),
        ("GET", "/v2/deployments/dep"),
        ("PUT", "/v2/deployments/dep"),
        ("GET", "/v2/deployments/dep"),
    ]
    assert _body(script.requests[0]) == SDK_DEPLOY
    assert _body(script.requests[2]) == SDK_UPDATE
    assert (created.name, created.id, created.base_model) == ("dep", "dep-uuid", "qwen3-8b")
    assert (created.accelerator, created.min_replicas, created.max_replicas) == (
        "a10_24gb_100",
        0,
        2,
    )
    assert (created.scale_up_threshold, created.current_replicas) == (4, 1)
    assert created.status.is_serving


def test_batch_jobs_live_at_batch_inference_by_uuid() -> None:
    listed = {"data": {"jobs": [PLATFORM_BATCH]}}
    script = Script(
        reply(200, PLATFORM_BATCH),
        reply(200, listed),
        reply(200, PLATFORM_BATCH),
        reply(204),
        reply(200, {**PLATFORM_BATCH, "status": "canceled"}),
        reply(200, {"url": "https://files.example.com/out.jsonl"}),
    )
    client = sync_client(script, settings=PLATFORM)
    job = client.create_batch_inference_job(_batch())
    assert [j.id for j in client.list_batch_inference_jobs()] == ["batch-uuid"]
    client.get_batch_inference_job("batch-uuid")
    cancelled = client.cancel_batch_inference_job("batch-uuid")
    results = client.get_batch_inference_results("batch-uuid")
    sent = [(r.method, r.url.raw_path.decode()) for r in script.requests]
    assert sent == [
        ("POST", "/v2/batch-inference"),
        ("GET", "/v2/batch-inference?limit=100"),
        ("GET", "/v2/batch-inference/batch-uuid"),
        ("POST", "/v2/batch-inference/batch-uuid/cancel"),
        ("GET", "/v2/batch-inference/batch-uuid"),
        ("GET", "/v2/batch-inference/batch-uuid/results"),
    ]
    assert _body(script.requests[0]) == SDK_BATCH
    assert (job.id, job.dataset, job.base_model, job.result_path) == (
        "batch-uuid",
        "batch",
        "qwen3-8b",
        "s3://bucket/out",
    )
    assert cancelled.status.is_cancelled
    assert results.url.endswith("out.jsonl")


def test_a_dataset_is_looked_up_by_name_in_its_connection() -> None:
    record = {
        "uuid": "ds-uuid",
        "name": "train",
        "connection": {"type": "file", "name": "file_uploads"},
        "lastError": None,
        "status": "connected",
    }
    script = Script(reply(200, record), reply(200, record))
    client = sync_client(script, settings=PLATFORM)
    found = client.get_dataset("train")
    client.get_dataset("warehouse/train")
    assert [r.url.raw_path.decode() for r in script.requests] == [
        "/v1/datasets/name/train?connectionName=file_uploads",
        "/v1/datasets/name/train?connectionName=warehouse",
    ]
    assert (found.id, found.status.is_success, found.connection_name) == (
        "ds-uuid",
        True,
        "file_uploads",
    )


@pytest.mark.parametrize("settings", [PLATFORM, PLATFORM.__class__(token=TOKEN, dialect="spec")])
def test_the_upload_sends_the_required_headers_in_either_dialect(
    settings: ClientSettings,
) -> None:
    begin = {
        "presignedUrl": "https://blob.example.com/u?sig=1",
        "uploadToken": "tok",
        "requiredHeaders": {"x-ms-blob-type": "BlockBlob"},
    }
    dataset = {"uuid": "d", "name": "train", "status": "connecting"}
    script = Script(reply(200, begin), reply(201), reply(200, dataset))
    result = sync_client(script, settings=settings).upload_dataset("train", b"a,b\n", "t.csv")
    put = script.requests[1]
    assert (put.method, put.headers["x-ms-blob-type"], put.headers["content-type"]) == (
        "PUT",
        "BlockBlob",
        "text/csv",
    )
    assert "authorization" not in put.headers
    assert result.name == "train"


def test_an_upload_whose_completion_answers_no_dataset_reads_it_by_name() -> None:
    begin = {"presignedUrl": "https://blob.example.com/u", "uploadToken": "tok"}
    dataset = {"uuid": "d", "name": "train", "status": "connecting"}
    script = Script(reply(200, begin), reply(200), reply(200, {}), reply(200, dataset))
    result = sync_client(script, settings=PLATFORM).upload_dataset("train", b"a,b\n", "t.csv")
    assert script.requests[-1].url.path == "/v1/datasets/name/train"
    assert result.id == "d"


def test_production_shapes_parse_into_the_same_models() -> None:
    version = AdapterVersion.model_validate(
        {
            "repo": "support",
            "tag": 2,
            "archived": False,
            "baseModel": "qwen3-8b",
            "adapterPath": "s3://weights",
            "status": "completed",
            "finetuningJob": {"uuid": "job-uuid", "error": None},
        }
    )
    assert (version.adapter_id, version.finetuning_job, version.status.is_success) == (
        "support/2",
        "job-uuid",
        True,
    )
    repo = Repo.model_validate(
        {
            "uuid": "r",
            "name": "support",
            "versions": [{"tag": 1, "baseModel": "m", "archived": False}],
        }
    )
    assert (repo.id, [v.version for v in repo.versions]) == ("r", [1])
    failed = FinetuningJob.model_validate({"data": {**PLATFORM_JOB, "status": "errored"}})
    assert failed.status.is_failure
    assert failed.id == "job-uuid"
    assert Dataset.model_validate({"name": "d", "lastError": "bad"}).last_error == "bad"
    assert Deployment.model_validate(PLATFORM_DEPLOYMENT).base_model == "qwen3-8b"
    assert BatchInferenceJob.model_validate({"id": "seed", "status": "queued"}).id == "seed"


def test_seed_shapes_pass_through_unchanged() -> None:
    seed = {"id": "j", "status": "training", "repo": "r", "adapter_version": None}
    assert FinetuningJob.model_validate(seed).model_dump(exclude_none=True) == {
        "id": "j",
        "status": "training",
        "repo": "r",
    }


# -- detection -----------------------------------------------------------------------------


def test_auto_probes_once_per_process_and_fills_the_tenant() -> None:
    script = Script(reply(200, USER), reply(200, PLATFORM_JOB), reply(200, PLATFORM_JOB))
    seen: list[Any] = []
    first = sync_client(script, settings=AUTO)
    first._on_dialect = seen.append
    first.create_finetuning_job(FinetuningJobRequest(base_model="m", dataset="d", repo="r"))
    assert script.requests[0].url.path == "/v1/users/current"
    assert str(seen[0]) == "platform (detected)"
    assert len(seen) == 1
    assert first.settings.tenant_id == "acme42"
    second = sync_client(script, settings=AUTO)
    assert second.dialect is not None
    assert second.dialect.dialect == "platform"
    second.create_finetuning_job(FinetuningJobRequest(base_model="m", dataset="d", repo="r"))
    assert [r.url.path for r in script.requests].count("/v1/users/current") == 1
    assert "params" in _body(script.requests[-1])


def test_the_sdk_path_is_probed_when_the_api_notes_path_is_missing() -> None:
    script = Script(reply(404, {"error": "no"}), reply(200, USER))
    client = sync_client(script, settings=AUTO)
    assert client.resolve_dialect().dialect == "platform"
    assert [r.url.path for r in script.requests] == ["/v1/users/current", "/users/current"]


@pytest.mark.parametrize("status", [400, 404, 405])
def test_a_server_without_the_user_record_is_the_seed(status: int) -> None:
    job = {"id": "j", "status": "queued"}
    script = Script(reply(status, {"error": "x"}), reply(status, {"error": "x"}), reply(200, job))
    client = sync_client(script, settings=AUTO)
    client.create_finetuning_job(FinetuningJobRequest(base_model="m", dataset="d", repo="r"))
    assert client.dialect is not None
    assert str(client.dialect) == "spec (detected)"
    assert "params" not in _body(script.requests[-1])
    assert cached(AUTO) == client.dialect


def test_a_failed_probe_raises_and_caches_nothing() -> None:
    script = Script(reply(401, {"error": "bad token"}), reply(200, USER))
    client = sync_client(script, settings=AUTO)
    with pytest.raises(errors.AuthenticationError, match="users/current"):
        client.resolve_dialect()
    assert cached(AUTO) is None
    assert client.dialect is None
    assert client.resolve_dialect().dialect == "platform"


def test_a_probe_answered_503_is_retried_by_the_policy() -> None:
    script = Script(reply(503), reply(200, USER))
    assert sync_client(script, settings=AUTO).resolve_dialect().dialect == "platform"
    assert len(script.requests) == 2


def test_serving_without_a_tenant_learns_it_from_the_user_record() -> None:
    script = Script(reply(200, USER), reply(200, {"generated_text": "hi"}))
    forced = ClientSettings(token=TOKEN, dialect="platform")
    client = sync_client(script, settings=forced)
    assert client.health("dep") is True
    assert script.requests[-1].url.path == "/acme42/deployments/v2/llms/dep/health"


def test_the_async_client_probes_and_shares_the_cache() -> None:
    script = Script(reply(200, USER), reply(200, PLATFORM_JOB), reply(200, PLATFORM_JOB))
    request = FinetuningJobRequest(base_model="m", dataset="d", repo="r")

    async def scenario() -> tuple[FinetuningJob, FinetuningJob]:
        one = await async_client(script, settings=AUTO).create_finetuning_job(request)
        return one, sync_client(script, settings=AUTO).create_finetuning_job(request)

    first, second = asyncio.run(scenario())
    assert first.id == second.id == "job-uuid"
    assert [r.url.path for r in script.requests].count("/v1/users/current") == 1


def test_detection_is_safe_across_threads() -> None:
    lock = threading.Lock()
    probes: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/users/current"):
            with lock:
                probes.append(request.url.path)
            return httpx.Response(200, json=USER)
        return httpx.Response(200, json=PLATFORM_JOB)

    results: list[str] = []

    def work() -> None:
        client = sync_client(handler, settings=AUTO)
        results.append(client.resolve_dialect().dialect)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == ["platform"] * 8
    assert 1 <= len(probes) <= 8
    after = len(probes)
    sync_client(handler, settings=AUTO).resolve_dialect()
    assert len(probes) == after


def test_a_bad_dialect_setting_names_the_choices() -> None:
    with pytest.raises(ValueError, match="dialect must be one of auto, spec, platform"):
        ClientSettings(token=TOKEN, dialect="prod")
