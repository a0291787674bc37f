"""`--dialect`: each server answers the other dialect's requests with a 4xx naming its own,
and the upload PUT must carry the `requiredHeaders` it was given."""

from __future__ import annotations

import asyncio

import pytest

from airflow_predibase.emulator.in_process import InProcessEmulator

SDK_JOB = {"params": {"base_model": "qwen3-8b", "task": "sft"}, "dataset": "d", "repo": "r"}
SEED_JOB = {"base_model": "qwen3-8b", "dataset": "d", "repo": "r"}


def _call(emulator: InProcessEmulator, method: str, path: str, **kwargs):
    async def go():
        async with emulator.async_client() as client:
            return await client.request(method, path, **kwargs)

    return asyncio.run(go())


@pytest.mark.parametrize(
    ("dialect", "method", "path", "body", "other"),
    [
        ("platform", "POST", "/v2/finetuning/jobs", SEED_JOB, "seed spec"),
        ("spec", "POST", "/v2/finetuning/jobs", SDK_JOB, "official SDK"),
        ("spec", "GET", "/v1/users/current", None, "official SDK"),
        ("spec", "POST", "/v2/batch-inference", {"dataset": "d"}, "official SDK"),
    ],
)
def test_a_request_for_the_other_dialect_is_told_which_one_this_is(
    dialect, method, path, body, other
) -> None:
    emulator = InProcessEmulator.create(dialect=dialect)
    answer = _call(emulator, method, path, json=body)
    assert answer.status_code == 400
    message = answer.json()["error"]
    assert f"speaks the '{dialect}' dialect" in message
    assert other in message
    assert "--dialect default" in message


def test_default_serves_the_user_record_and_a_union_job() -> None:
    emulator = InProcessEmulator.create(dialect="default", profile="instant")
    user = _call(emulator, "GET", "/users/current").json()
    assert user["tenant"]["shortCode"] == emulator.tenant
    assert _call(emulator, "GET", "/v1/users/current").status_code == 200


def test_the_upload_put_must_echo_the_required_headers() -> None:
    emulator = InProcessEmulator.create(upload_required_headers={"x-ms-blob-type": "BlockBlob"})
    begin = _call(
        emulator, "POST", "/v2/datasets/upload", json={"fileName": "a.csv", "mimeType": "text/csv"}
    ).json()
    assert begin["requiredHeaders"] == {"x-ms-blob-type": "BlockBlob"}
    url = begin["presignedUrl"].replace("http://localhost", "")
    refused = _call(emulator, "PUT", url, content=b"prompt,completion\na,b\n")
    assert refused.status_code == 403
    assert "x-ms-blob-type: BlockBlob" in refused.json()["error"]
    accepted = _call(
        emulator,
        "PUT",
        url,
        content=b"prompt,completion\na,b\n",
        headers={"x-ms-blob-type": "BlockBlob"},
    )
    assert accepted.status_code == 200


def _upload(emulator: InProcessEmulator, name: str, data: bytes) -> None:
    begin = _call(
        emulator, "POST", "/v2/datasets/upload", json={"fileName": "a.csv", "mimeType": "text/csv"}
    ).json()
    _call(emulator, "PUT", begin["presignedUrl"].replace("http://localhost", ""), content=data)
    done = _call(
        emulator,
        "PUT",
        "/v2/datasets/upload",
        json={"name": name, "uploadToken": begin["uploadToken"]},
    )
    assert done.status_code == 200, done.text


def test_platform_serves_seed_only_paths_with_production_objects() -> None:
    emulator = InProcessEmulator.create(dialect="platform", profile="instant")
    _upload(emulator, "ds", b"prompt,completion\na,b\n")
    (listed,) = _call(emulator, "GET", "/v2/datasets").json()["data"]
    assert listed["uuid"]
    assert listed["connection"] == {"type": "file", "name": "file_uploads"}
    by_name = _call(emulator, "GET", "/v1/datasets/name/ds?connectionName=file_uploads")
    assert by_name.json()["uuid"] == listed["uuid"]
    elsewhere = _call(emulator, "GET", "/v1/datasets/name/ds?connectionName=s3")
    assert elsewhere.status_code == 404


def test_cost_estimate_reads_the_json_body_of_a_get() -> None:
    emulator = InProcessEmulator.create(dialect="platform", profile="instant")
    _upload(emulator, "ds", b"prompt,completion\na,b\n")
    _call(emulator, "GET", "/v1/datasets/name/ds")  # instant: one read to connect
    body = {"baseModel": "qwen3-8b", "datasetName": "file_uploads/ds", "epochs": 2}
    answer = _call(emulator, "GET", "/v2/finetuning/jobs/cost-estimate", json=body)
    assert answer.status_code == 200, answer.text
    assert answer.json()["estimatedCost"] > 0


def test_the_metrics_stream_needs_the_token() -> None:
    from websockets.exceptions import InvalidStatus
    from websockets.sync.client import connect

    from airflow_predibase.emulator import EmulatorServer

    with EmulatorServer(dialect="platform") as server:
        url = server.url.replace("http://", "ws://") + "/v2/finetuning/jobs/x/metrics/stream"
        with pytest.raises(InvalidStatus) as refused:
            connect(url, open_timeout=5)
        assert refused.value.response.status_code == 403


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/v2/finetuning/jobs"),
        ("GET", "/v2/finetuning/jobs/cost-estimate"),
        ("PUT", "/v2/finetuning/jobs/nope/config"),
        ("POST", "/v2/repos"),
        ("PUT", "/v2/repos/nope/version/1"),
        ("POST", "/v2/deployments"),
        ("PUT", "/v2/deployments/nope"),
        ("POST", "/v2/batch-inference"),
    ],
)
@pytest.mark.parametrize(
    "body",
    [
        [],
        {},
        {"params": 1, "config": "x", "serverConfig": []},
        {"params": {"task": "grpo", "base_model": "qwen3-8b"}, "dataset": "d", "repo": "r"},
        {"params": {"rewardFns": {"functions": {"f": {"encodedFn": "!!"}}}, "task": "grpo"}},
        {"name": "x", "config": {"computeSpec": {"requests": 3}}},
        {"dataset": 5, "serverConfig": {"baseModel": 7}, "archived": "yes"},
    ],
)
def test_production_bodies_that_make_no_sense_get_a_4xx(method, path, body) -> None:
    """What the seed-spec fuzzing (test_emulator_schemathesis) cannot reach: production's
    own routes and nested bodies."""
    emulator = InProcessEmulator.create(dialect="platform")
    answer = _call(emulator, method, path, json=body)
    if path == "/v2/repos" and isinstance(body, dict) and isinstance(body.get("name"), str):
        assert answer.status_code == 200, answer.text  # extra keys are allowed
        return
    assert 400 <= answer.status_code < 500, answer.text
    assert answer.json()["error"]


@pytest.mark.parametrize("dialect", ["platform", "default"])
def test_a_dataset_by_name_carries_its_description_and_columns(dialect: str) -> None:
    emulator = InProcessEmulator.create(dialect=dialect, profile="instant")
    begin = _call(
        emulator, "POST", "/v2/datasets/upload", json={"fileName": "a.csv", "mimeType": "text/csv"}
    ).json()
    _call(
        emulator,
        "PUT",
        begin["presignedUrl"].replace("http://localhost", ""),
        content=b"p,c\na,b\n",
    )
    body = {"name": "ds", "uploadToken": begin["uploadToken"], "description": "[sha256:ab]"}
    assert _call(emulator, "PUT", "/v2/datasets/upload", json=body).status_code == 200
    _call(emulator, "GET", "/v1/datasets/name/ds")  # instant: one read to connect
    got = _call(emulator, "GET", "/v1/datasets/name/ds").json()
    assert got["status"] == "connected"
    assert (got["description"], got["columns"], got["rowCount"]) == ("[sha256:ab]", ["p", "c"], 1)
    # `default` answers the union, as every shared read: the seed's fields too.
    assert ("format" in got) is (dialect == "default")
