"""The official `predibase` SDK (2025.10.3, in its own `.venv-sdk`) against the emulator.

The SDK is what every Predibase user runs against production, so what it sends and reads is
the best evidence of production's wire format. Each test starts an emulator in the
`platform` or `default` dialect, runs `scripts/flows.py` with `.venv-sdk/bin/python`, and
checks what the SDK printed and what the emulator holds. Build the venv with
`make sdk-venv`; without it these tests fail (never skip).
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from airflow_predibase.emulator import EmulatorServer

ROOT = Path(__file__).resolve().parents[2]
SDK_PYTHON = ROOT / ".venv-sdk" / "bin" / "python"
SCRIPT = Path(__file__).with_name("scripts") / "flows.py"
TIMEOUT = 120
#: From scripts/flows.py (which runs in the SDK's own virtualenv).
GRPO_SECRET = "sk-oracle-judge-4e1d"
HF_TOKEN = "hf_oracle_token_90ab"
SERVING = {
    "scale_up_threshold": 4,
    "max_total_tokens": 8192,
    "max_num_batched_tokens": 4096,
    "prefix_caching": True,
    "chunked_prefill": True,
    "speculator": "disabled",
    "speculation_disable_by_batch_size": 32,
    "uses_guaranteed_capacity": False,
    "lorax_image_tag": "lorax:2025.10",
    "request_logging_enabled": True,
    "direct_ingress": True,
    "backend": "v2",
    "disable_adapters": False,
    "merge_adapter": False,
    "cache_model": True,
    "quantization": "fp8",
    "compute_spec": {"requests": {"inference": {"sku": "a10_24gb_100"}}, "region": "us-west-2"},
}


def _sdk_python() -> Path:
    if not SDK_PYTHON.exists():
        pytest.fail(
            f"{SDK_PYTHON} is missing: run `make sdk-venv` (the official SDK, "
            "predibase==2025.10.3, in a test-only virtualenv) and rerun these tests"
        )
    return SDK_PYTHON


def _lines(stdout: str) -> list[dict[str, Any]]:
    """The JSON lines the script printed (the SDK's own progress tables may share a line)."""
    out = []
    for line in stdout.splitlines():
        start = line.find('{"flow"')
        if start >= 0:
            out.append(json.loads(line[start:]))
    return out


def _run(emulator: EmulatorServer, tag: str, *flows: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "PREDIBASE_GATEWAY": emulator.url,
        "PREDIBASE_API_TOKEN": emulator.token,
        "PREDIBASE_CI": "1",
    }
    return subprocess.run(
        [str(_sdk_python()), str(SCRIPT), tag, *flows],
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )


def run_sdk(emulator: EmulatorServer, tag: str, *flows: str) -> list[dict[str, Any]]:
    done = _run(emulator, tag, *flows)
    assert done.returncode == 0, f"SDK script failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return _lines(done.stdout)


def by_flow(lines: list[dict[str, Any]], flow: str) -> list[dict[str, Any]]:
    return [line for line in lines if line["flow"] == flow]


@pytest.fixture(scope="module", params=["platform", "default"])
def emulator(request: pytest.FixtureRequest) -> Iterator[EmulatorServer]:
    _sdk_python()
    with EmulatorServer(profile="fast", dialect=request.param) as server:
        yield server


@pytest.fixture(scope="module")
def results(emulator: EmulatorServer) -> dict[str, list[dict[str, Any]]]:
    """Every flow, run once per dialect: independent ones side by side to keep it quick."""
    runs = {
        "training": ("t", "datasets", "finetuning", "adapters", "cancel"),
        "watch": ("w", "datasets", "finetuning:watch"),
        "deployments": ("d", "deployments"),
        "batch": ("b", "batch"),
    }
    with ThreadPoolExecutor(max_workers=len(runs)) as pool:
        futures = {name: pool.submit(run_sdk, emulator, *args) for name, args in runs.items()}
        return {name: future.result() for name, future in futures.items()}


def test_connect_reads_the_tenant_from_the_user_record(results, emulator) -> None:
    assert by_flow(results["training"], "connect") == [
        {"flow": "connect", "tenant": emulator.tenant}
    ]


def test_datasets_upload_from_file_and_dataframe(results, emulator) -> None:
    lines = results["training"]
    (uploaded,) = by_flow(lines, "from_file")
    assert uploaded["status"] == "connected"
    assert uploaded["connection"] == "file_uploads"
    assert by_flow(lines, "from_pandas_dataframe")[0]["status"] == "connected"
    assert by_flow(lines, "datasets_get")[0]["uuid"] == uploaded["uuid"]
    names = {d["name"]: d for d in emulator.admin.state()["datasets"]}
    assert names["sft-t"]["id"] == uploaded["uuid"]
    assert names["cpt-t"]["row_count"] == 4


def test_repos_create_get_list(results, emulator) -> None:
    lines = results["training"]
    assert by_flow(lines, "repos_create")[0]["name"] == "repo-t"
    assert by_flow(lines, "repos_get")[0]["name"] == "repo-t"
    assert "repo-t" in by_flow(lines, "repos_list")[0]["names"]
    assert "gone-t" not in by_flow(lines, "repos_delete")[0]["names"]
    assert "gone-t" not in {r["name"] for r in emulator.admin.state()["repos"]}


@pytest.mark.parametrize("run", ["training", "watch"])
def test_finetuning_every_task(results, emulator, run) -> None:
    created = by_flow(results[run], "finetuning_create")
    tasks = [job["task"] for job in created]
    assert tasks == ["sft", "continued_pretraining", "grpo", "classification"]
    assert all(job["params_task"] == job["task"] for job in created)
    jobs = {j["id"]: j for j in emulator.admin.state()["finetuning_jobs"]}
    for job in created:
        assert job["uuid"] in jobs
        if run == "watch":  # watch=True streamed the metrics to the end
            assert job["status"] == "completed", job
    repo = "repo-" + ("t" if run == "training" else "w")
    assert [job["adapter"] for job in created] == [f"{repo}/{n}" for n in range(1, 5)]
    # Classification trained on the `text`/`label` dataset (dataset_files.TASK_COLUMNS).
    classification = jobs[created[-1]["uuid"]]
    assert classification["dataset"] == f"cls-{repo[-1]}"
    assert classification["status"] != "errored", classification


@pytest.mark.parametrize("run", ["training", "watch"])
def test_grpo_secrets_come_back_by_name_only(results, emulator, run) -> None:
    (shown,) = by_flow(results[run], "grpo_secrets")
    assert shown["secrets"] == {"JUDGE_KEY": "**********"}
    assert shown["config"] == {"JUDGE_KEY": "**********"}
    for lines in results.values():
        assert GRPO_SECRET not in json.dumps(lines)
    assert GRPO_SECRET not in json.dumps(emulator.admin.state())


def test_finetuning_get_cancel_and_estimate(results, emulator) -> None:
    lines = results["training"]
    assert by_flow(lines, "finetuning_get")[0]["accelerator"]
    assert by_flow(lines, "estimate_cost") == [{"flow": "estimate_cost", "ok": True}]
    (printed,) = by_flow(lines, "estimate_finetuning_cost")
    assert printed["printed"][0].startswith("Estimated cost: $0.")
    (canceled,) = by_flow(lines, "finetuning_cancel")
    assert canceled["status"] in ("stopping", "canceled")
    jobs = {j["id"]: j for j in emulator.admin.state()["finetuning_jobs"]}
    assert jobs[canceled["uuid"]]["status"] in ("stopping", "canceled")


def test_adapters_get_archive_unarchive_delete(results, emulator) -> None:
    lines = results["training"]
    (adapter,) = by_flow(lines, "adapters_get")
    assert adapter["name"] == "repo-t/1"
    assert adapter["path"]
    assert adapter["job"]
    assert by_flow(lines, "adapters_archive")[0]["archived"] is True
    assert by_flow(lines, "adapters_unarchive")[0]["archived"] is False
    assert 2 not in by_flow(lines, "adapters_delete")[0]["versions"]
    repo = next(r for r in emulator.admin.state()["repos"] if r["name"] == "repo-t")
    assert [v["version"] for v in repo["versions"]] == [1, 3, 4, 5]


def test_deployments_create_get_list_update_delete(results, emulator) -> None:
    lines = results["deployments"]
    blocking, quick = by_flow(lines, "deployments_create")
    assert blocking["status"] == "ready"
    assert blocking["block"] is True
    assert blocking["accelerator"]
    assert blocking["model"] == "qwen3-8b"
    assert blocking["custom_args"] == ["--max-batch-size", "8"]
    # Every setting sent is reported back (so a diff can be computed), but the token, which
    # is never stored. The SDK reads `config` as its UpdateDeploymentConfig; the
    # quantization and the compute spec's SKU (the accelerator) are top-level fields.
    for name, value in SERVING.items():
        if name not in ("quantization", "compute_spec"):
            assert blocking["config"][name] == value, name
    assert blocking["quantization"] == "fp8"
    assert blocking["accelerator"] == "a10_24gb_100"
    assert blocking["hf_token"] is None
    assert HF_TOKEN not in json.dumps(emulator.admin.state())
    assert quick["status"] in ("pending", "initializing")
    assert quick["block"] is False
    assert by_flow(lines, "deployments_get")[0]["status"] == "ready"
    assert {"dep-d", "dep2-d"} <= set(by_flow(lines, "deployments_list")[0]["names"])
    assert by_flow(lines, "deployments_update")[0]["config"] == 2
    assert by_flow(lines, "deployments_delete")[0]["status"] == "deleting"
    state = {d["name"]: d for d in emulator.admin.state()["deployments"]}
    assert state["dep-d"]["max_replicas"] == 2
    assert state["dep-d"]["cooldown_time"] == 900


def test_batch_create_get_list_cancel_results(results, emulator) -> None:
    lines = results["batch"]
    (created,) = by_flow(lines, "batch_create")
    assert by_flow(lines, "batch_cancel")[0]["status"] == "canceled"
    assert created["uuid"] in by_flow(lines, "batch_list")[0]["uuids"]
    assert by_flow(lines, "batch_get")[0]["status"] == "completed"
    assert by_flow(lines, "batch_results")[0]["ids"] == ["r0", "r1", "r2"]
    jobs = {j["id"]: j for j in emulator.admin.state()["batch_jobs"]}
    assert jobs[created["uuid"]]["status"] == "completed"


def test_the_sdk_cannot_send_required_headers_so_the_default_announces_none() -> None:
    """Why `upload_required_headers` is empty by default: SDK 2025.10.3 iterates the map as
    pairs (`for k, v in required_headers`), so any header name longer than two characters
    breaks `datasets.from_file` before the PUT (docs/platform.md)."""
    headers = {"x-ms-blob-type": "BlockBlob"}
    with EmulatorServer(profile="fast", upload_required_headers=headers) as server:
        done = _run(server, "h", "datasets")
    assert done.returncode != 0
    assert "too many values to unpack" in done.stderr


@pytest.mark.parametrize("dialect", ["platform", "default"])
def test_a_queued_jobs_config_can_be_changed(dialect: str) -> None:
    # `instant`: the job stays queued until read, so the change is never racing the start.
    with EmulatorServer(profile="instant", dialect=dialect) as server:
        (changed,) = by_flow(run_sdk(server, "u", "update_config"), "update_config")
        assert (changed["epochs"], changed["rank"]) == (5, 8)
        (job,) = server.admin.state()["finetuning_jobs"]
        auth = {"Authorization": f"Bearer {server.token}"}
        stored = httpx.get(f"{server.control_url}/finetuning/jobs/{job['id']}", headers=auth)
        assert stored.json()["params"]["rank"] == 8
