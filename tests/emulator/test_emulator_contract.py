"""The emulator against the project's OpenAPI description (`openapi/predibase.yml`).

Hand-written and table-driven rather than schemathesis: on two cores a generated suite is
slow and flaky, while this one is exhaustive where it matters:

- every operation is called with a valid request, and answers 200 with a body that
  validates against the operation's documented response schema (SSE events included);
- a table of error cases answers the documented status with a documented body;
- for every operation with a body, each property is sent with the wrong JSON type and each
  required property is left out: the answer must be a documented 4xx, never 5xx or 2xx.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from emulator_testkit import BASE_MODEL, Emu, jsonl, sentiment_rows

from airflow_predibase.emulator import EmulatorServer, ManualClock
from airflow_predibase.openapi import (
    load_spec,
    operation,
    operations,
    response_validator,
    validator_for,
)


@dataclass
class World:
    """Resources every case can use, built once for the module."""

    emu: Emu
    ids: dict[str, str] = field(default_factory=dict)

    def serving_path(self, route: str, deployment: str = "dep") -> str:
        return f"/{self.emu.server.tenant}/deployments/v2/llms/{deployment}{route}"


@pytest.fixture(scope="module", params=["default", "spec"])
def world(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[World]:
    """The seed's contract holds on both dialects that serve it (docs/platform.md)."""
    clock = ManualClock()
    with EmulatorServer(clock=clock, dialect=request.param) as server:
        emu = Emu(server, clock)
        world = World(emu)
        adapter = emu.adapter("rp", sentiment_rows())
        emu.adapter("retired", sentiment_rows())  # deleteAdapterVersion deletes it
        emu.dataset("ds", sentiment_rows(8))
        job = emu.job("rp", "ds")
        world.ids["job"] = job["id"]
        emu.deployment("dep", min_replicas=1)
        batch_rows = [
            {
                "custom_id": str(i),
                "method": "POST",
                "url": "/v1/chat/completions",
                "body": {"model": model, "messages": [{"role": "user", "content": "great"}]},
            }
            for i, model in enumerate(["", adapter])
        ]
        emu.dataset("bin", batch_rows)
        batch = emu.ok(
            emu.control.post(
                "/batch-inference/jobs", json={"base_model": BASE_MODEL, "dataset": "bin"}
            )
        )
        emu.advance(5)
        world.ids["batch"] = batch["id"]
        source = tmp_path_factory.mktemp("contract") / "source.csv"
        source.write_text("prompt,completion\na,b\n")
        world.ids["source"] = str(source)
        yield world
        emu.close()


# -- checking an answer against the description ----------------------------------------------


def _documented(operation_id: str, status: int) -> bool:
    responses = operation(operation_id).op["responses"]
    return str(status) in responses or f"{str(status)[0]}XX" in responses


def check_answer(operation_id: str, response: httpx.Response) -> None:
    """The status is documented for the operation and the body matches its schema."""
    status = response.status_code
    assert _documented(operation_id, status), f"{operation_id}: undocumented {status}"
    content_type = response.headers.get("content-type", "")
    if content_type.startswith("text/event-stream"):
        media = operation(operation_id).op["responses"][str(status)]["content"]
        sse = media["text/event-stream"]
        validators = [validator_for(ref) for ref in sse["x-sse-data-schemas"]]
        events = [line[5:].strip() for line in response.text.splitlines() if line[:5] == "data:"]
        assert events, f"{operation_id}: empty stream"
        for event in events:
            if event == sse.get("x-sse-terminator"):
                continue
            payload = json.loads(event)
            errors = [list(v.iter_errors(payload)) for v in validators]
            assert any(not e for e in errors), f"{operation_id}: event {payload}: {errors}"
        if "x-sse-terminator" in sse:
            assert events[-1] == sse["x-sse-terminator"]
        return
    validator = response_validator(operation_id, str(status))
    if validator is None:
        return
    problems = [e.message for e in validator.iter_errors(response.json())]
    assert problems == [], f"{operation_id} {status}: {problems}: {response.text[:300]}"


def call(world: World, method: str, path: str, body: Any = None, **kwargs: Any) -> httpx.Response:
    url = world.emu.server.url + path
    headers = kwargs.pop("headers", world.emu.auth)
    return httpx.request(method, url, json=body, headers=headers, timeout=10, **kwargs)


# -- every operation, valid ---------------------------------------------------------------------

Case = Callable[[World], tuple[str, httpx.Response]]


def _upload_target(world: World) -> dict[str, str]:
    body = {"fileName": "up.jsonl", "mimeType": "application/jsonl"}
    target: dict[str, str] = call(world, "POST", "/v2/datasets/upload", body).json()
    return target


def _complete_upload(world: World) -> httpx.Response:
    target = _upload_target(world)
    httpx.put(target["presignedUrl"], content=jsonl(sentiment_rows(2)))
    body = {"name": "uploaded", "uploadToken": target["uploadToken"]}
    return call(world, "PUT", "/v2/datasets/upload", body)


def _then(world: World, setup: tuple[str, str, Any], method: str, path: str) -> httpx.Response:
    """Create something in `setup`, then act on it (so shared resources stay intact)."""
    created = call(world, *setup).json()
    return call(world, method, path.format(**created))


def _cold_chat(world: World) -> httpx.Response:
    call(world, "POST", "/v2/deployments", {"name": "cold", "base_model": BASE_MODEL})
    return call(world, "POST", world.serving_path("/v1/chat/completions", "cold"), _chat(False))


def _generate(stream: bool) -> dict[str, Any]:
    return {"inputs": "great film", "parameters": {"adapter_id": "rp/1", "details": True}} | (
        {"stream": True} if stream else {}
    )


def _chat(stream: bool) -> dict[str, Any]:
    return {"model": "rp/1", "messages": [{"role": "user", "content": "great"}], "stream": stream}


VALID: dict[str, Case] = {
    "listModels": lambda w: ("listModels", call(w, "GET", "/v2/models")),
    "createRepo": lambda w: ("createRepo", call(w, "POST", "/v2/repos", {"name": "new-repo"})),
    "listRepos": lambda w: ("listRepos", call(w, "GET", "/v2/repos")),
    "getRepo": lambda w: ("getRepo", call(w, "GET", "/v2/repos/rp")),
    "getAdapterVersion": lambda w: ("getAdapterVersion", call(w, "GET", "/v2/repos/rp/version/1")),
    "updateAdapterVersion": lambda w: (
        "updateAdapterVersion",
        call(w, "PUT", "/v2/repos/rp/version/1", {"archived": False}),
    ),
    "deleteAdapterVersion": lambda w: (
        "deleteAdapterVersion",
        call(w, "DELETE", "/v2/repos/retired/version/1"),
    ),
    "deleteRepo": lambda w: (
        "deleteRepo",
        _then(w, ("POST", "/v2/repos", {"name": "doomed"}), "DELETE", "/v2/repos/{name}"),
    ),
    "createDataset": lambda w: (
        "createDataset",
        call(w, "POST", "/v2/datasets", {"name": "from-source", "source": w.ids["source"]}),
    ),
    "listDatasets": lambda w: ("listDatasets", call(w, "GET", "/v2/datasets")),
    "getDataset": lambda w: ("getDataset", call(w, "GET", "/v2/datasets/ds")),
    "createDatasetUpload": lambda w: (
        "createDatasetUpload",
        call(w, "POST", "/v2/datasets/upload", {"fileName": "a.csv", "mimeType": "text/csv"}),
    ),
    "completeDatasetUpload": lambda w: ("completeDatasetUpload", _complete_upload(w)),
    "createFinetuningJob": lambda w: (
        "createFinetuningJob",
        call(
            w,
            "POST",
            "/v2/finetuning/jobs",
            {"base_model": BASE_MODEL, "dataset": "ds", "repo": "rp", "rank": 8, "epochs": 1},
        ),
    ),
    "listFinetuningJobs": lambda w: ("listFinetuningJobs", call(w, "GET", "/v2/finetuning/jobs")),
    "getFinetuningJob": lambda w: (
        "getFinetuningJob",
        call(w, "GET", f"/v2/finetuning/jobs/{w.ids['job']}"),
    ),
    "cancelFinetuningJob": lambda w: (
        "cancelFinetuningJob",
        _then(
            w,
            (
                "POST",
                "/v2/finetuning/jobs",
                {"base_model": BASE_MODEL, "dataset": "ds", "repo": "rp"},
            ),
            "POST",
            "/v2/finetuning/jobs/{id}/cancel",
        ),
    ),
    "createDeployment": lambda w: (
        "createDeployment",
        call(
            w,
            "POST",
            "/v2/deployments",
            {"name": "new-dep", "base_model": BASE_MODEL, "accelerator": "l4_24gb_100"},
        ),
    ),
    "listDeployments": lambda w: ("listDeployments", call(w, "GET", "/v2/deployments")),
    "getDeployment": lambda w: ("getDeployment", call(w, "GET", "/v2/deployments/dep")),
    "updateDeployment": lambda w: (
        "updateDeployment",
        call(w, "PUT", "/v2/deployments/dep", {"max_replicas": 2, "cooldown_time": 600}),
    ),
    "deleteDeployment": lambda w: (
        "deleteDeployment",
        _then(
            w,
            ("POST", "/v2/deployments", {"name": "doomed", "base_model": BASE_MODEL}),
            "DELETE",
            "/v2/deployments/{name}",
        ),
    ),
    "createBatchInferenceJob": lambda w: (
        "createBatchInferenceJob",
        call(w, "POST", "/v2/batch-inference/jobs", {"base_model": BASE_MODEL, "dataset": "bin"}),
    ),
    "listBatchInferenceJobs": lambda w: (
        "listBatchInferenceJobs",
        call(w, "GET", "/v2/batch-inference/jobs"),
    ),
    "getBatchInferenceJob": lambda w: (
        "getBatchInferenceJob",
        call(w, "GET", f"/v2/batch-inference/jobs/{w.ids['batch']}"),
    ),
    "cancelBatchInferenceJob": lambda w: (
        "cancelBatchInferenceJob",
        _then(
            w,
            ("POST", "/v2/batch-inference/jobs", {"base_model": BASE_MODEL, "dataset": "bin"}),
            "POST",
            "/v2/batch-inference/jobs/{id}/cancel",
        ),
    ),
    "getBatchInferenceResults": lambda w: (
        "getBatchInferenceResults",
        call(w, "GET", f"/v2/batch-inference/jobs/{w.ids['batch']}/results"),
    ),
    "generate": lambda w: (
        "generate",
        call(w, "POST", w.serving_path("/generate"), _generate(False)),
    ),
    "generateStream": lambda w: (
        "generateStream",
        call(w, "POST", w.serving_path("/generate_stream"), _generate(False)),
    ),
    "generateCompat": lambda w: (
        "generateCompat",
        call(w, "POST", w.serving_path(""), _generate(False)),
    ),
    "generateCompat-stream": lambda w: (
        "generateCompat",
        call(w, "POST", w.serving_path(""), _generate(True)),
    ),
    "health": lambda w: ("health", call(w, "GET", w.serving_path("/health"))),
    "info": lambda w: ("info", call(w, "GET", w.serving_path("/info"))),
    "createChatCompletion": lambda w: (
        "createChatCompletion",
        call(w, "POST", w.serving_path("/v1/chat/completions"), _chat(False)),
    ),
    "createChatCompletion-stream": lambda w: (
        "createChatCompletion",
        call(w, "POST", w.serving_path("/v1/chat/completions"), _chat(True)),
    ),
    "createCompletion": lambda w: (
        "createCompletion",
        call(w, "POST", w.serving_path("/v1/completions"), {"model": "", "prompt": "hi"}),
    ),
    "createCompletion-stream": lambda w: (
        "createCompletion",
        call(w, "POST", w.serving_path("/v1/completions"), {"prompt": "hi there", "stream": True}),
    ),
}


def test_the_table_covers_every_operation() -> None:
    assert {name.split("-")[0] for name in VALID} == set(operations())


@pytest.mark.parametrize("case", sorted(VALID))
def test_every_operation_answers_its_documented_schema(world: World, case: str) -> None:
    operation_id, response = VALID[case](world)
    assert response.status_code == 200, response.text
    check_answer(operation_id, response)


# -- documented errors ----------------------------------------------------------------------------

ERRORS: dict[str, tuple[int, Case]] = {
    "no token": (
        401,
        lambda w: ("listRepos", call(w, "GET", "/v2/repos", headers={})),
    ),
    "no token on serving": (
        401,
        lambda w: (
            "generate",
            call(w, "POST", w.serving_path("/generate"), {"inputs": "x"}, headers={}),
        ),
    ),
    "missing dataset": (404, lambda w: ("getDataset", call(w, "GET", "/v2/datasets/nope"))),
    "missing version": (
        404,
        lambda w: ("getAdapterVersion", call(w, "GET", "/v2/repos/rp/version/99")),
    ),
    "duplicate repo": (409, lambda w: ("createRepo", call(w, "POST", "/v2/repos", {"name": "rp"}))),
    "results too early": (
        409,
        lambda w: (
            "getBatchInferenceResults",
            _then(
                w,
                ("POST", "/v2/batch-inference/jobs", {"base_model": BASE_MODEL, "dataset": "bin"}),
                "GET",
                "/v2/batch-inference/jobs/{id}/results",
            ),
        ),
    ),
    "unknown accelerator": (
        400,
        lambda w: (
            "createDeployment",
            call(
                w,
                "POST",
                "/v2/deployments",
                {"name": "x", "base_model": BASE_MODEL, "accelerator": "tpu"},
            ),
        ),
    ),
    "accelerator change": (
        400,
        lambda w: (
            "updateDeployment",
            call(w, "PUT", "/v2/deployments/dep", {"accelerator": "h100_80gb_sxm_100"}),
        ),
    ),
    "unknown adapter": (
        404,
        lambda w: (
            "generate",
            call(
                w,
                "POST",
                w.serving_path("/generate"),
                {"inputs": "x", "parameters": {"adapter_id": "rp/77"}},
            ),
        ),
    ),
    "hub adapter": (
        424,
        lambda w: (
            "generate",
            call(
                w,
                "POST",
                w.serving_path("/generate"),
                {"inputs": "x", "parameters": {"adapter_id": "a/b", "adapter_source": "hub"}},
            ),
        ),
    ),
    "not ready": (503, lambda w: ("createChatCompletion", _cold_chat(w))),
    "unknown tenant": (
        404,
        lambda w: ("info", call(w, "GET", f"/nobody/deployments/v2/llms/{BASE_MODEL}/info")),
    ),
}


@pytest.mark.parametrize("case", sorted(ERRORS))
def test_errors_answer_documented_statuses_and_bodies(world: World, case: str) -> None:
    status, make = ERRORS[case]
    operation_id, response = make(world)
    assert response.status_code == status, response.text
    check_answer(operation_id, response)


# -- every body property, broken ------------------------------------------------------------------

WRONG = {
    "string": 12345,
    "integer": "not-an-integer",
    "number": "not-a-number",
    "boolean": "not-a-boolean",
    "array": {"not": "an array"},
    "object": ["not", "an", "object"],
}


def _resolved(schema: dict[str, Any]) -> dict[str, Any]:
    """Follow `$ref` and single-element `allOf` to the schema that has the type."""
    spec = load_spec()
    while True:
        if "$ref" in schema:
            node: Any = spec
            for part in schema["$ref"].removeprefix("#/").split("/"):
                node = node[part]
            schema = node
        elif "allOf" in schema and len(schema["allOf"]) == 1 and "type" not in schema:
            schema = schema["allOf"][0]
        else:
            return schema


def mutations(valid: dict[str, Any], schema: dict[str, Any]) -> Iterator[tuple[str, Any]]:
    """(what was broken, body): each property mistyped, each required one left out."""
    schema = _resolved(schema)
    for name in schema.get("required", []):
        if name in valid:
            yield f"without {name}", {k: v for k, v in valid.items() if k != name}
    for name, prop in schema.get("properties", {}).items():
        prop = _resolved(prop)
        kind = prop.get("type")
        if kind in WRONG:
            yield f"{name} as {type(WRONG[kind]).__name__}", {**valid, name: WRONG[kind]}
        if kind == "object" and isinstance(valid.get(name), dict):
            for what, inner in mutations(valid[name], prop):
                yield f"{name}.{what}", {**valid, name: inner}


BODIES: dict[str, tuple[str, Callable[[World], dict[str, Any]]]] = {
    "createRepo": ("/v2/repos", lambda w: {"name": "m", "description": "d"}),
    "updateAdapterVersion": ("/v2/repos/rp/version/1", lambda w: {"archived": False}),
    "createDataset": (
        "/v2/datasets",
        lambda w: {"name": "m", "source": "/x.csv", "description": "d"},
    ),
    "createDatasetUpload": (
        "/v2/datasets/upload",
        lambda w: {"fileName": "a.csv", "mimeType": "text/csv"},
    ),
    "completeDatasetUpload": (
        "/v2/datasets/upload",
        lambda w: {"name": "m", "uploadToken": "t", "description": "d"},
    ),
    "createFinetuningJob": (
        "/v2/finetuning/jobs",
        lambda w: {
            "base_model": BASE_MODEL,
            "dataset": "ds",
            "repo": "rp",
            "adapter_type": "lora",
            "task": "sft",
            "epochs": 1,
            "train_steps": 5,
            "learning_rate": 0.001,
            "rank": 16,
            "target_modules": ["q_proj"],
            "lora_alpha": 16,
            "lora_dropout": 0.1,
            "apply_chat_template": False,
            "enable_early_stopping": False,
            "continue_from_version": "rp/1",
            "description": "d",
        },
    ),
    "createDeployment": (
        "/v2/deployments",
        lambda w: {
            "name": "mutant",
            "base_model": BASE_MODEL,
            "accelerator": "a10_24gb",
            "min_replicas": 0,
            "max_replicas": 1,
            "cooldown_time": 60,
            "scale_up_threshold": 1,
            "quantization": "fp8",
            "max_total_tokens": 100,
            "preloaded_adapters": ["rp/1"],
            "prefix_caching": True,
            "speculator": "auto",
            "uses_guaranteed_capacity": False,
            "description": "d",
        },
    ),
    "updateDeployment": (
        "/v2/deployments/dep",
        lambda w: {
            "min_replicas": 1,
            "max_replicas": 2,
            "cooldown_time": 60,
            "prefix_caching": True,
        },
    ),
    "createBatchInferenceJob": (
        "/v2/batch-inference/jobs",
        lambda w: {"base_model": BASE_MODEL, "dataset": "bin", "output": "o", "description": "d"},
    ),
    "generate": (
        "/generate",
        lambda w: {
            "inputs": "hi",
            "stream": False,
            "parameters": {
                "max_new_tokens": 5,
                "temperature": 0.5,
                "top_p": 0.9,
                "top_k": 5,
                "stop": ["x"],
                "details": True,
                "adapter_id": "rp/1",
                "adapter_source": "pbase",
                "do_sample": False,
                "seed": 1,
                "return_full_text": False,
                "watermark": False,
                "best_of": 1,
                "response_format": {"type": "json_object"},
            },
        },
    ),
    "createChatCompletion": (
        "/v1/chat/completions",
        lambda w: {
            "model": "",
            "messages": [{"role": "user", "content": "hi"}],
            "max_tokens": 5,
            "temperature": 0.1,
            "top_p": 0.5,
            "stream": False,
        },
    ),
    "createCompletion": (
        "/v1/completions",
        lambda w: {
            "model": "",
            "prompt": "hi",
            "max_tokens": 5,
            "temperature": 0.1,
            "stream": False,
        },
    ),
}
BODIES["generateStream"] = ("/generate_stream", BODIES["generate"][1])
BODIES["generateCompat"] = ("", BODIES["generate"][1])


def test_the_body_table_covers_every_operation_with_a_body() -> None:
    with_body = {name for name, op in operations().items() if "requestBody" in op.op}
    assert set(BODIES) == with_body


@pytest.mark.parametrize("operation_id", sorted(BODIES))
def test_broken_bodies_get_documented_4xx_never_5xx(world: World, operation_id: str) -> None:
    path, make_valid = BODIES[operation_id]
    found = operation(operation_id)
    method = found.method
    if found.plane == "serving":
        path = world.serving_path(path)
    schema = found.op["requestBody"]["content"]["application/json"]["schema"]
    broken = [*mutations(make_valid(world), schema), ("a JSON array", []), ("a string", "x")]
    assert len(broken) > 3
    failures = []
    for what, body in broken:
        response = call(world, method, path, body)
        if not 400 <= response.status_code < 500:
            failures.append(f"{what}: {response.status_code} {response.text[:120]}")
            continue
        try:
            check_answer(operation_id, response)
        except AssertionError as exc:
            failures.append(f"{what}: {exc}")
    not_json = httpx.request(
        method,
        world.emu.server.url + path,
        content=b"{not json",
        headers={**world.emu.auth, "content-type": "application/json"},
    )
    assert not_json.status_code == 400
    assert failures == []


def test_the_valid_bodies_are_valid(world: World) -> None:
    """Guards the table itself: a broken 'valid' body would make the mutations meaningless."""
    from airflow_predibase.openapi import request_validator

    for operation_id, (_, make_valid) in BODIES.items():
        problems = [
            e.message for e in request_validator(operation_id).iter_errors(make_valid(world))
        ]
        assert problems == [], operation_id


def test_the_description_file_is_the_shipped_one() -> None:
    spec_file = Path(__file__).parents[2] / "airflow_predibase" / "openapi" / "predibase.yml"
    assert spec_file.exists()
    assert load_spec()["info"]["version"] == "2.0"
