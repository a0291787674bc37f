"""Every client method against the project's OpenAPI description.

A fake server built from `airflow_predibase/openapi/predibase.yml` checks each request the
client sends (method, path, auth, JSON body against the operation's request schema) and
answers with a response built from the operation's response schema, which must then parse
into the client's model. The table covers every public method of both clients, and every
operationId of the spec must be hit by at least one of them.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from predibase_fakes import SETTINGS, TOKEN, async_client, example, outcome, sse, sync_client

from airflow_predibase import openapi
from airflow_predibase.client import AsyncPredibaseClient, PredibaseClient
from airflow_predibase.client.models import (
    AdapterVersion,
    BaseModelInfo,
    BatchInferenceJob,
    BatchInferenceJobRequest,
    BatchInferenceResults,
    BatchOutputRow,
    ChatCompletionChunk,
    ChatCompletionRequest,
    ChatCompletionResponse,
    ChatMessage,
    CompletionRequest,
    CompletionResponse,
    Dataset,
    DatasetRequest,
    DatasetUploadTarget,
    Deployment,
    DeploymentRequest,
    DeploymentUpdateRequest,
    FinetuningJob,
    FinetuningJobRequest,
    GenerateParameters,
    GenerateRequest,
    GenerateResponse,
    Repo,
    RepoRequest,
    ServingInfo,
    StreamEvent,
)

SERVING_PREFIX = f"{SETTINGS.serving_url}/{SETTINGS.tenant_id}/deployments/v2/llms/"
PRESIGNED = "https://files.example.com/upload/train.jsonl?X-Amz-Signature=abc%2F123"

GEN = GenerateRequest(
    inputs="Say hi",
    parameters=GenerateParameters(
        max_new_tokens=16,
        temperature=0.1,
        top_p=0.9,
        top_k=5,
        stop=["\n"],
        details=True,
        adapter_id="my-repo/1",
        adapter_source="pbase",
    ),
)
CHAT = ChatCompletionRequest(
    model="my-repo/1",
    messages=[
        ChatMessage(role="system", content="Be brief."),
        ChatMessage(role="user", content="Hi"),
    ],
    max_tokens=16,
    temperature=0.2,
    top_p=0.9,
)
COMPLETION = CompletionRequest(prompt="Hello", model="", max_tokens=8, temperature=0.0)
FINETUNE = FinetuningJobRequest(
    base_model="llama-3-1-8b-instruct",
    dataset="support-tickets",
    repo="support",
    adapter_type="turbo_lora",
    task="sft",
    epochs=2,
    train_steps=100,
    learning_rate=0.0002,
    rank=16,
    target_modules=["q_proj", "v_proj"],
    lora_alpha=32,
    lora_dropout=0.05,
    apply_chat_template=True,
    enable_early_stopping=True,
    continue_from_version="support/1",
    description="airflow:dag.task:abc123",
)
CONFIG = {
    "accelerator": "a10_24gb",
    "min_replicas": 0,
    "max_replicas": 2,
    "cooldown_time": 600,
    "scale_up_threshold": 4,
    "quantization": "fp8",
    "max_total_tokens": 4096,
    "preloaded_adapters": ["support/1"],
    "prefix_caching": True,
    "speculator": "auto",
    "uses_guaranteed_capacity": False,
    "description": "nightly",
}

# method name -> (call, type each result item must have). Every public method is here.
CASES: dict[str, tuple[Callable[[Any], Any], type | None]] = {
    "list_models": (lambda c: c.list_models(), BaseModelInfo),
    "create_dataset": (
        lambda c: c.create_dataset(
            DatasetRequest(name="ds", source="s3://bucket/train.jsonl", description="d")
        ),
        Dataset,
    ),
    "list_datasets": (lambda c: c.list_datasets(), Dataset),
    "get_dataset": (lambda c: c.get_dataset("ds"), Dataset),
    "begin_dataset_upload": (
        lambda c: c.begin_dataset_upload("train.jsonl", "application/jsonl"),
        DatasetUploadTarget,
    ),
    "put_upload_bytes": (
        lambda c: c.put_upload_bytes(PRESIGNED, b'{"prompt": "a"}\n', "application/jsonl"),
        None,
    ),
    "complete_dataset_upload": (
        lambda c: c.complete_dataset_upload("ds", "upload-token", "d"),
        Dataset,
    ),
    "upload_dataset": (
        lambda c: c.upload_dataset(
            "ds", b'{"prompt": "a", "completion": "b"}\n', "train.jsonl", description="d"
        ),
        Dataset,
    ),
    "create_repo": (lambda c: c.create_repo(RepoRequest(name="support", description="d")), Repo),
    "list_repos": (lambda c: c.list_repos(), Repo),
    "get_repo": (lambda c: c.get_repo("support"), Repo),
    "delete_repo": (lambda c: c.delete_repo("support"), None),
    "get_adapter_version": (lambda c: c.get_adapter_version("support", 2), AdapterVersion),
    # adapter versions (retention)
    "list_adapter_versions": (lambda c: c.list_adapter_versions("support"), AdapterVersion),
    "archive_adapter_version": (lambda c: c.archive_adapter_version("support", 2), AdapterVersion),
    "unarchive_adapter_version": (
        lambda c: c.unarchive_adapter_version("support", 2),
        AdapterVersion,
    ),
    "delete_adapter_version": (lambda c: c.delete_adapter_version("support", 2), None),
    "create_finetuning_job": (lambda c: c.create_finetuning_job(FINETUNE), FinetuningJob),
    "list_finetuning_jobs": (lambda c: c.list_finetuning_jobs(), FinetuningJob),
    "get_finetuning_job": (lambda c: c.get_finetuning_job("job-1"), FinetuningJob),
    "cancel_finetuning_job": (lambda c: c.cancel_finetuning_job("job-1"), FinetuningJob),
    "create_deployment": (
        lambda c: c.create_deployment(
            DeploymentRequest(name="dep", base_model="llama-3-1-8b-instruct", **CONFIG)
        ),
        Deployment,
    ),
    "list_deployments": (lambda c: c.list_deployments(), Deployment),
    "get_deployment": (lambda c: c.get_deployment("dep"), Deployment),
    "update_deployment": (
        lambda c: c.update_deployment(
            "dep", DeploymentUpdateRequest(base_model="llama-3-1-8b-instruct", **CONFIG)
        ),
        Deployment,
    ),
    "delete_deployment": (lambda c: c.delete_deployment("dep"), None),
    "create_batch_inference_job": (
        lambda c: c.create_batch_inference_job(
            BatchInferenceJobRequest(
                base_model="llama-3-1-8b-instruct",
                dataset="batch-in",
                output="batch-out",
                description="d",
            )
        ),
        BatchInferenceJob,
    ),
    "list_batch_inference_jobs": (lambda c: c.list_batch_inference_jobs(), BatchInferenceJob),
    "get_batch_inference_job": (lambda c: c.get_batch_inference_job("b-1"), BatchInferenceJob),
    "cancel_batch_inference_job": (
        lambda c: c.cancel_batch_inference_job("b-1"),
        BatchInferenceJob,
    ),
    "get_batch_inference_results": (
        lambda c: c.get_batch_inference_results("b-1"),
        BatchInferenceResults,
    ),
    "download_batch_results": (lambda c: c.download_batch_results("b-1"), BatchOutputRow),
    "generate": (lambda c: c.generate("dep", GEN), GenerateResponse),
    "generate_compat": (lambda c: c.generate_compat("dep", GEN), GenerateResponse),
    "generate_stream": (lambda c: c.generate_stream("dep", GEN), StreamEvent),
    "chat_completion": (lambda c: c.chat_completion("dep", CHAT), ChatCompletionResponse),
    "chat_completion_stream": (
        lambda c: c.chat_completion_stream("dep", CHAT),
        ChatCompletionChunk,
    ),
    "completion": (lambda c: c.completion("dep", COMPLETION), CompletionResponse),
    "completion_stream": (lambda c: c.completion_stream("dep", COMPLETION), CompletionResponse),
    "health": (lambda c: c.health("dep"), bool),
    "info": (lambda c: c.info("dep"), ServingInfo),
}
NOT_OPERATIONS = {"close", "deployment_url", "resolve_dialect", "dialect"}
#: Production-only training records: the seed spec has no such operation, so against it they
#: send nothing and answer None (tests/client/test_client_training_records.py).
NOT_OPERATIONS |= {"estimate_finetuning_cost", "get_finetuning_timeline", "read_finetuning_metrics"}


class SpecServer:
    """Answers like the platform would, as far as the spec says; checks every request."""

    def __init__(self, *, full: bool) -> None:
        self.full = full
        self.operation_ids: list[str] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        request.read()
        url = str(request.url).split("?")[0]
        if url.startswith(SETTINGS.base_url):
            return self.answer(request, "control", url[len(SETTINGS.base_url) :])
        if url.startswith(SERVING_PREFIX):
            rest = url[len(SERVING_PREFIX) :]
            deployment, _, path = rest.partition("/")
            assert deployment == "dep"
            return self.answer(request, "serving", "/" + path)
        return self.external(request)

    def answer(self, request: httpx.Request, plane: str, path: str) -> httpx.Response:
        assert request.headers["authorization"] == f"Bearer {TOKEN}"
        assert request.headers["user-agent"].startswith("airflow-provider-predibase/")
        matched = openapi.match_operation(request.method, path, plane)
        assert matched, f"{request.method} {plane} {path} is no operation in the spec"
        op = matched[0]
        op_id = op.op["operationId"]
        self.operation_ids.append(op_id)

        validator = openapi.request_validator(op_id)
        if validator is None:
            assert request.content == b"", f"{op_id} takes no body"
            body = None
        else:
            body = json.loads(request.content)
            errors = [e.message for e in validator.iter_errors(body)]
            assert not errors, f"{op_id} request body {body} breaks the spec: {errors}"
            # The schemas allow extra fields, so a misspelt one would pass validation.
            undeclared = set(body) - _declared(op.op["requestBody"])
            assert not undeclared, f"{op_id} sends fields the spec does not declare: {undeclared}"

        content = op.op["responses"]["200"].get("content", {})
        if "text/event-stream" in content and ("application/json" not in content or body["stream"]):
            return self.stream(content["text/event-stream"])
        schema = content.get("application/json", {}).get("schema")
        if schema is None:
            return httpx.Response(200)
        data = example(schema, openapi.load_spec(), full=self.full)
        errors = [e.message for e in openapi.response_validator(op_id).iter_errors(data)]
        assert not errors, f"example for {op_id} breaks the spec (a test bug): {errors}"
        return httpx.Response(200, json=data, headers={"x-request-id": f"req-{op_id}"})

    def stream(self, media: dict[str, Any]) -> httpx.Response:
        spec = openapi.load_spec()
        event_schema = {"$ref": media["x-sse-data-schemas"][0]}
        events = [example(event_schema, spec, full=self.full) for _ in range(2)]
        body = sse(events, done="x-sse-terminator" in media)
        return httpx.Response(200, content=body, headers={"content-type": "text/event-stream"})

    def external(self, request: httpx.Request) -> httpx.Response:
        # Presigned upload and result URLs must never see the token.
        assert "authorization" not in request.headers
        self.operation_ids.append(f"external {request.method}")
        if request.method == "PUT":
            assert request.content
            return httpx.Response(200)
        row = example(
            {"$ref": "#/components/schemas/BatchOutputRow"}, openapi.load_spec(), full=self.full
        )
        return httpx.Response(200, text=f"{json.dumps(row)}\n{json.dumps(row)}\n")


def _declared(node: dict[str, Any]) -> set[str]:
    """Top-level property names of a request body's schema, through refs and allOf."""
    spec = openapi.load_spec()
    while "$ref" in node:
        node = _follow(node, spec)
    if "content" in node:
        return _declared(node["content"]["application/json"]["schema"])
    names = set(node.get("properties", {}))
    for part in node.get("allOf", []):
        names |= _declared(part)
    return names


def _follow(node: dict[str, Any], spec: dict[str, Any]) -> dict[str, Any]:
    target: Any = spec
    for part in node["$ref"].removeprefix("#/").split("/"):
        target = target[part]
    return dict(target)


def _client(kind: str, server: SpecServer) -> Any:
    return (sync_client if kind == "sync" else async_client)(server)


@pytest.mark.parametrize("full", [True, False], ids=["all-fields", "required-or-null"])
@pytest.mark.parametrize("kind", ["sync", "async"])
@pytest.mark.parametrize("method", sorted(CASES))
def test_method_speaks_the_spec(method: str, kind: str, full: bool) -> None:
    call, expected = CASES[method]
    server = SpecServer(full=full)
    status, result = outcome(lambda: call(_client(kind, server)))
    assert status == "ok", result
    assert server.operation_ids, "no request was sent"
    if expected is None:
        assert result is None
        return
    # outcome() dumps models; rebuild them to check the type each item has.
    items = result if isinstance(result, list) else [result]
    # A repo's `versions` is optional in the spec: a bare answer lists none.
    assert items or (method, full) == ("list_adapter_versions", False), f"{method} returned nothing"
    if expected is not bool:
        items = [expected.model_validate(item) for item in items]
    assert all(isinstance(item, expected) for item in items)


def test_every_spec_operation_is_reached_by_a_client_method() -> None:
    server = SpecServer(full=True)
    for call, _ in CASES.values():
        outcome(lambda call=call: call(sync_client(server)))
    missing = set(openapi.operations()) - set(server.operation_ids)
    assert not missing, f"operations with no client method: {sorted(missing)}"


def _public_methods(cls: type) -> dict[str, inspect.Signature]:
    return {
        name: inspect.signature(member)
        for name, member in inspect.getmembers(cls, inspect.isfunction)
        if not name.startswith("_")
    }


def test_the_table_covers_every_public_method() -> None:
    assert set(_public_methods(PredibaseClient)) - NOT_OPERATIONS == set(CASES)


def test_async_client_has_the_same_methods_and_parameters() -> None:
    sync, async_ = _public_methods(PredibaseClient), _public_methods(AsyncPredibaseClient)
    assert set(sync) == set(async_)
    for name, signature in sync.items():
        assert list(signature.parameters) == list(async_[name].parameters), name


def test_upload_dataset_runs_the_three_steps_in_order() -> None:
    server = SpecServer(full=True)
    outcome(lambda: CASES["upload_dataset"][0](sync_client(server)))
    assert server.operation_ids == ["createDatasetUpload", "external PUT", "completeDatasetUpload"]
