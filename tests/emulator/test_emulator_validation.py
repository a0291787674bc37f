"""What the emulator refuses, and how: status codes and error bodies in the platform's shapes."""

from __future__ import annotations

import httpx
import pytest
from emulator_testkit import BASE_MODEL, Emu, jsonl, sentiment_rows

from airflow_predibase.client.models import ACCELERATORS


@pytest.mark.parametrize("header", [None, "Bearer wrong", "pb_emulator_token"])
def test_every_plane_wants_the_bearer_token(emu: Emu, header: str | None) -> None:
    headers = {} if header is None else {"Authorization": header}
    control = httpx.get(f"{emu.server.control_url}/finetuning/jobs", headers=headers)
    assert control.status_code == 401
    assert set(control.json()) == {"error"}
    serving = httpx.post(
        f"{emu.server.deployment_url(BASE_MODEL)}/generate", json={"inputs": "x"}, headers=headers
    )
    assert serving.status_code == 401
    admin = httpx.get(f"{emu.server.url}/__emulator__/state", headers=headers)
    assert admin.status_code == 401


def test_bodies_that_break_the_schema_get_422_naming_the_field(emu: Emu) -> None:
    missing = emu.control.post("/finetuning/jobs", json={"dataset": "d"})
    assert missing.status_code == 422
    assert "base_model" in missing.json()["error"]
    wrong_type = emu.control.post(
        "/finetuning/jobs", json={"base_model": BASE_MODEL, "dataset": "d", "epochs": "three"}
    )
    assert wrong_type.status_code == 422
    assert "epochs" in wrong_type.json()["error"]
    not_json = emu.control.post(
        "/repos", content=b"{nope", headers={"content-type": "application/json"}
    )
    assert not_json.status_code == 400
    assert emu.control.post("/repos", json=[1, 2]).status_code == 422
    assert emu.control.post("/repos", json={"name": "  "}).status_code == 422


def test_unknown_base_models_are_refused_with_the_supported_list(emu: Emu) -> None:
    answer = emu.control.post("/deployments", json={"name": "d", "base_model": "gpt-17"})
    assert answer.status_code == 400
    assert "gpt-17" in answer.json()["error"]
    assert BASE_MODEL in answer.json()["error"]
    models = emu.ok(emu.control.get("/models"))["data"]
    assert BASE_MODEL in [m["name"] for m in models]


def test_an_unknown_accelerator_is_a_400_listing_the_valid_ones(emu: Emu) -> None:
    answer = emu.control.post(
        "/deployments", json={"name": "d", "base_model": BASE_MODEL, "accelerator": "tpu_v9"}
    )
    assert answer.status_code == 400
    assert all(accelerator in answer.json()["error"] for accelerator in ACCELERATORS)


def test_duplicate_deployment_names_conflict(emu: Emu) -> None:
    body = {"name": "dep", "base_model": BASE_MODEL}
    emu.ok(emu.control.post("/deployments", json=body))
    assert emu.control.post("/deployments", json=body).status_code == 409
    assert emu.control.post("/deployments", json={**body, "name": "Bad_Name"}).status_code == 400


def test_the_accelerator_and_base_model_cannot_change_on_update(emu: Emu) -> None:
    emu.deployment("dep", accelerator="a10_24gb_100")
    changed = emu.control.put("/deployments/dep", json={"accelerator": "a100_80gb_100"})
    assert changed.status_code == 400
    assert "accelerator cannot be changed" in changed.json()["error"]
    same = emu.control.put("/deployments/dep", json={"accelerator": "a10_24gb"})
    assert same.status_code == 200  # the current accelerator, in its short form, is fine
    emu.advance(2)
    other_model = emu.control.put("/deployments/dep", json={"base_model": "llama-3-1-8b-instruct"})
    assert other_model.status_code == 400
    assert emu.control.put("/deployments/nope", json={"max_replicas": 2}).status_code == 404


def test_missing_datasets_and_repos_are_404(emu: Emu) -> None:
    body = {"base_model": BASE_MODEL, "dataset": "nope", "repo": "r"}
    assert emu.control.post("/finetuning/jobs", json=body).status_code == 404
    emu.dataset("reviews", sentiment_rows(4))
    missing_repo = emu.control.post("/finetuning/jobs", json={**body, "dataset": "reviews"})
    assert missing_repo.status_code == 404
    assert "repository" in missing_repo.json()["error"]
    for path in ("/datasets/nope", "/repos/nope", "/finetuning/jobs/nope", "/deployments/nope"):
        assert emu.control.get(path).status_code == 404
    assert emu.control.get("/repos/nope/version/1").status_code == 404
    assert emu.control.get("/batch-inference/jobs/nope").status_code == 404


def test_a_dataset_still_connecting_cannot_be_trained_on(emu: Emu) -> None:
    emu.upload("reviews", jsonl(sentiment_rows(4)))
    emu.repo("r")
    answer = emu.control.post(
        "/finetuning/jobs", json={"base_model": BASE_MODEL, "dataset": "reviews", "repo": "r"}
    )
    assert answer.status_code == 400
    assert "connecting" in answer.json()["error"]


def test_names_are_unique_per_kind(emu: Emu) -> None:
    emu.repo("r")
    assert emu.control.post("/repos", json={"name": "r"}).status_code == 409
    emu.dataset("d", sentiment_rows(2))
    assert emu.control.post("/datasets", json={"name": "d", "source": "/x.csv"}).status_code == 409


def test_upload_flow_errors(emu: Emu) -> None:
    unsupported = emu.control.post(
        "/datasets/upload", json={"fileName": "notes.docx", "mimeType": "application/msword"}
    )
    assert unsupported.status_code == 400
    assert "csv, jsonl, json, parquet" in unsupported.json()["error"]
    assert httpx.put(f"{emu.server.url}/__uploads__/forged", content=b"x").status_code == 404
    unknown = emu.control.put("/datasets/upload", json={"name": "d", "uploadToken": "forged"})
    assert unknown.status_code == 404
    target = emu.ok(
        emu.control.post("/datasets/upload", json={"fileName": "a.csv", "mimeType": "text/csv"})
    )
    early = emu.control.put(
        "/datasets/upload", json={"name": "d", "uploadToken": target["uploadToken"]}
    )
    assert early.status_code == 400  # nothing PUT yet


def test_uploads_over_the_size_limit_are_refused() -> None:
    from airflow_predibase.emulator import EmulatorServer

    with EmulatorServer(max_upload_bytes=1000) as server:
        auth = {"Authorization": f"Bearer {server.token}"}
        target = httpx.post(
            f"{server.control_url}/datasets/upload",
            json={"fileName": "big.jsonl", "mimeType": "application/jsonl"},
            headers=auth,
        ).json()
        too_big = httpx.put(target["presignedUrl"], content=b"x" * 1001)
        assert too_big.status_code == 413
        assert "limit" in too_big.json()["error"]


def test_serving_errors_carry_error_type(emu: Emu) -> None:
    adapter = emu.adapter("sentiment", sentiment_rows(8))
    emu.deployment("llama", base_model="llama-3-1-8b-instruct")
    emu.deployment("qwen")
    mismatch = emu.serving("llama").post(
        "/generate", json={"inputs": "hi", "parameters": {"adapter_id": adapter}}
    )
    assert mismatch.status_code == 400
    assert "trained on qwen3-8b" in mismatch.json()["error"]
    unknown = emu.serving("qwen").post(
        "/generate", json={"inputs": "hi", "parameters": {"adapter_id": "sentiment/7"}}
    )
    assert unknown.status_code == 404
    invalid = emu.serving("qwen").post(
        "/generate", json={"inputs": "hi", "parameters": {"max_new_tokens": 0}}
    )
    assert invalid.status_code == 422
    assert invalid.json()["error_type"] == "validation"
    assert "max_new_tokens" in invalid.json()["error"]
    empty = emu.serving("qwen").post("/generate", json={"inputs": ""})
    assert empty.status_code == 422
    hub = emu.serving("qwen").post(
        "/generate",
        json={"inputs": "hi", "parameters": {"adapter_id": "org/model", "adapter_source": "hub"}},
    )
    assert (hub.status_code, hub.json()["error_type"]) == (424, "generation")
    no_messages = emu.serving("qwen").post("/v1/chat/completions", json={"messages": []})
    assert no_messages.status_code == 422


def test_the_serving_plane_checks_the_tenant(emu: Emu) -> None:
    url = f"{emu.server.url}/someone-else/deployments/v2/llms/{BASE_MODEL}/generate"
    answer = httpx.post(url, json={"inputs": "hi"}, headers=emu.auth)
    assert answer.status_code == 404
    assert "tenant" in answer.json()["error"]
    assert (
        emu.serving("no-such-deployment").post("/generate", json={"inputs": "x"}).status_code == 404
    )


def test_unknown_routes_answer_json(emu: Emu) -> None:
    answer = emu.control.get("/no/such/route")
    assert answer.status_code == 404
    assert "error" in answer.json()
    assert emu.control.patch("/repos").status_code == 405
