"""Every setting the SDK accepts, as the emulator takes it: hardware checked the same way in
both dialects, secrets never shown back, the task's columns from dataset_files, and each
stored setting reported back (seed fields flat; production's deployment `config`)."""

from __future__ import annotations

import asyncio
import base64
import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from airflow_predibase import openapi
from airflow_predibase.client.models import ACCELERATORS, Deployment, DeploymentConfig
from airflow_predibase.dataset_files import TASK_COLUMNS
from airflow_predibase.emulator.in_process import InProcessEmulator

BASE_MODEL = "qwen3-8b"
SECRET = "sk-judge-7f3a-do-not-echo"
SDK = {"User-Agent": "predibase-sdk/2025.10.3"}
REWARD = base64.b64encode(b"def reward(prompt, completion, example):\n    return 1.0\n").decode()
SFT_ROWS = [{"prompt": f"ticket {i}: charged twice", "completion": "billing"} for i in range(4)]
LABELLED = [
    {"text": "I was charged twice this month", "label": "billing"},
    {"text": "The app crashes when it starts", "label": "technical"},
]
#: Every serving setting of DeploymentConfig but the accelerator, the token and description.
SERVING: dict[str, Any] = {
    "min_replicas": 0,
    "max_replicas": 2,
    "cooldown_time": 600,
    "scale_up_threshold": 4,
    "quantization": "fp8",
    "max_total_tokens": 8192,
    "max_num_batched_tokens": 4096,
    "preloaded_adapters": [],
    "prefix_caching": True,
    "chunked_prefill": True,
    "speculator": "disabled",
    "speculation_disable_by_batch_size": 32,
    "uses_guaranteed_capacity": False,
    "custom_args": ["--max-batch-size", "8"],
    "lorax_image_tag": "lorax:2025.10",
    "request_logging_enabled": True,
    "direct_ingress": True,
    "backend": "v2",
    "disable_adapters": False,
    "merge_adapter": True,
    "cache_model": True,
    "compute_spec": {"requests": {"inference": {"sku": "a10_24gb_100"}}, "region": "us-west-2"},
}
TRAINING: dict[str, Any] = {
    "epochs": 2,
    "learning_rate": 0.0001,
    "rank": 8,
    "target_modules": ["q_proj", "v_proj"],
    "lora_alpha": 16,
    "lora_dropout": 0.05,
    "apply_chat_template": True,
    "enable_early_stopping": False,
    "lr_scheduler": {"type": "cosine_with_restarts", "params": {"num_cycles": 2}},
    "optimizer": {"type": "adamw_torch", "params": {"weight_decay": 0.01}},
    "warmup_ratio": 0.1,
    "effective_batch_size": 16,
}
GRPO: dict[str, Any] = {
    "beta": 0.04,
    "num_generations": 8,
    "sampling_params": {"temperature": 0.9, "top_p": 0.95, "top_k": 50, "max_tokens": 256},
}
TRAINING_COMPUTE = {"region": "us-west-2", "requests": {"trainer": {"sku": "a100_80gb_100"}}}


def camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def platform_name(name: str) -> str:
    return "scaleUpRequestThreshold" if name == "scale_up_threshold" else camel(name)


class Caller:
    """Real HTTP requests to an in-process emulator (instant profile: each read moves a
    resource one state on)."""

    def __init__(self, dialect: str, **config: Any) -> None:
        self.emulator = InProcessEmulator.create(dialect=dialect, profile="instant", **config)
        self.texts: list[str] = []

    def __call__(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        async def go() -> httpx.Response:
            async with self.emulator.async_client() as client:
                return await client.request(method, path, **kwargs)

        answer = asyncio.run(go())
        self.texts.append(answer.text)
        return answer

    def ok(self, method: str, path: str, **kwargs: Any) -> Any:
        answer = self(method, path, **kwargs)
        assert answer.status_code == 200, answer.text
        json_answer = answer.headers.get("content-type", "").startswith("application/json")
        return answer.json() if json_answer else answer.text

    def dataset(self, name: str, rows: list[dict[str, Any]]) -> None:
        begin = self.ok(
            "POST",
            "/v2/datasets/upload",
            json={"fileName": f"{name}.jsonl", "mimeType": "application/jsonl"},
        )
        data = "".join(json.dumps(row) + "\n" for row in rows).encode()
        self.ok("PUT", begin["presignedUrl"].replace(self.emulator.base_url, ""), content=data)
        self.ok(
            "PUT", "/v2/datasets/upload", json={"name": name, "uploadToken": begin["uploadToken"]}
        )
        assert self.ok("GET", f"/v2/datasets/{name}")["status"] == "connected"

    def repo(self, name: str) -> None:
        self.ok("POST", "/v2/repos", json={"name": name})

    def finish_job(self, job_id: str) -> dict[str, Any]:
        for _ in range(5):
            job = self.ok("GET", f"/v2/finetuning/jobs/{job_id}")
            if job["status"] in ("completed", "errored"):
                return dict(job)
        raise AssertionError(f"job {job_id} did not finish: {job}")

    def state(self) -> dict[str, Any]:
        return dict(self.ok("GET", "/__emulator__/state"))


def valid(operation_id: str, body: Any) -> None:
    errors = [e.message for e in openapi.response_validator(operation_id).iter_errors(body)]
    assert not errors, f"{operation_id}: {errors}"


def platform_deployment(name: str, **config: Any) -> dict[str, Any]:
    return {"name": name, "config": {"baseModel": BASE_MODEL, **config}}


# -- 1. hardware: one check for the accelerator and the compute spec's SKU ----------------


@pytest.mark.parametrize("dialect", ["platform", "default"])
@pytest.mark.parametrize(
    ("config", "field", "value"),
    [
        ({"accelerator": "b200_192gb_100"}, "config.accelerator", "b200_192gb_100"),
        (
            {"computeSpec": {"requests": {"inference": {"sku": "tpu_v9"}}}},
            "config.computeSpec.requests.inference.sku",
            "tpu_v9",
        ),
    ],
)
def test_production_refuses_unknown_hardware_naming_the_field_and_the_valid_ids(
    dialect: str, config: dict[str, Any], field: str, value: str
) -> None:
    call = Caller(dialect)
    refused = call("POST", "/v2/deployments", json=platform_deployment("dep", **config))
    assert refused.status_code == 400, refused.text
    message = refused.json()["error"]
    assert message.startswith(f"field '{field}': unknown accelerator {value!r}")
    assert all(accelerator in message for accelerator in ACCELERATORS)
    assert call.state()["deployments"] == []
    # An update is checked the same way.
    call.ok("POST", "/v2/deployments", json=platform_deployment("dep"))
    call.ok("GET", "/v2/deployments/dep")
    call.ok("GET", "/v2/deployments/dep")
    update = call("PUT", "/v2/deployments/dep", json={"config": config})
    assert update.status_code == 400, update.text
    assert update.json()["error"].startswith(f"field '{field}': unknown accelerator")


@pytest.mark.parametrize("dialect", ["spec", "default"])
def test_the_seed_refuses_an_unknown_compute_spec_sku_as_it_refuses_an_accelerator(
    dialect: str,
) -> None:
    call = Caller(dialect)
    body = {"name": "dep", "base_model": BASE_MODEL}
    sku = call(
        "POST",
        "/v2/deployments",
        json={**body, "compute_spec": {"requests": {"inference": {"sku": "tpu_v9"}}}},
    )
    accelerator = call("POST", "/v2/deployments", json={**body, "accelerator": "tpu_v9"})
    for answer, field in (
        (sku, "compute_spec.requests.inference.sku"),
        (accelerator, "accelerator"),
    ):
        assert answer.status_code == 400, answer.text
        message = answer.json()["error"]
        assert message.startswith(f"field '{field}': unknown accelerator 'tpu_v9'")
        assert all(known in message for known in ACCELERATORS)
    assert call.state()["deployments"] == []


@pytest.mark.parametrize(
    ("dialect", "body"),
    [
        (
            "platform",
            platform_deployment(
                "dep", computeSpec={"requests": {"inference": {"sku": "a100_80gb_100"}}}
            ),
        ),
        (
            "spec",
            {
                "name": "dep",
                "base_model": BASE_MODEL,
                "compute_spec": {"requests": {"inference": {"sku": "a100_80gb_100"}}},
            },
        ),
    ],
)
def test_a_known_sku_is_the_deployments_accelerator_and_cannot_change(
    dialect: str, body: dict[str, Any]
) -> None:
    call = Caller(dialect)
    call.ok("POST", "/v2/deployments", json=body)
    assert call.state()["deployments"][0]["accelerator"] == "a100_80gb_100"
    call.ok("GET", "/v2/deployments/dep")
    call.ok("GET", "/v2/deployments/dep")
    other = {"requests": {"inference": {"sku": "a10_24gb_100"}}}
    change = (
        {"config": {"computeSpec": other}} if dialect == "platform" else {"compute_spec": other}
    )
    refused = call("PUT", "/v2/deployments/dep", json=change)
    assert refused.status_code == 400
    assert "accelerator cannot be changed" in refused.json()["error"]


# -- 2. GRPO secrets are never shown back ---------------------------------------------------


def test_grpo_secret_values_never_leave_the_emulator(tmp_path: Path) -> None:
    state_file = tmp_path / "state.db"
    call = Caller("platform", state_file=state_file)
    call.dataset("ds", SFT_ROWS)
    call.repo("rp")
    params = {
        "base_model": BASE_MODEL,
        "task": "grpo",
        "rewardFns": {"functions": {"reward": {"encodedFn": REWARD}}},
        "secrets": {"JUDGE_KEY": SECRET},
        **GRPO,
    }
    body = {"params": params, "dataset": "file_uploads/ds", "repo": "rp"}
    job = call.ok("POST", "/v2/finetuning/jobs", json=body)
    job_id = job["uuid"]
    assert job["params"]["secrets"] == {"JUDGE_KEY": "**********"}
    # The SDK's `finetuning.jobs.update` sends the whole config back, secrets included.
    updated = call.ok(
        "PUT", f"/v2/finetuning/jobs/{job_id}/config", json={**params, "num_generations": 4}
    )
    assert updated["params"]["num_generations"] == 4
    assert updated["params"]["secrets"] == {"JUDGE_KEY": "**********"}
    for path in (
        f"/v2/finetuning/jobs/{job_id}",
        "/v2/finetuning/jobs",
        f"/v2/finetuning/jobs/{job_id}/timeline",
        "/v2/repos/rp/version/1",
        "/v2/repos/rp",
    ):
        call.ok("GET", path)
    call.finish_job(job_id)
    call.ok("GET", f"/console/finetuning/jobs/{job_id}")
    call.state()
    call.ok("POST", f"/v2/finetuning/jobs/{job_id}/cancel")
    assert len(call.texts) > 12
    leaked = [text for text in call.texts if SECRET in text]
    assert leaked == []
    # Nor is the value stored: the state file (and its journal) never holds it.
    files = list(tmp_path.iterdir())
    assert state_file in files
    assert all(SECRET.encode() not in file.read_bytes() for file in files)


@pytest.mark.parametrize("dialect", ["spec", "default"])
def test_seed_grpo_secrets_are_shown_by_name_only(dialect: str) -> None:
    call = Caller(dialect)
    call.dataset("ds", SFT_ROWS)
    call.repo("rp")
    body = {
        "base_model": BASE_MODEL,
        "dataset": "ds",
        "repo": "rp",
        "task": "grpo",
        "reward_fns": {"functions": {"reward": {"encoded_fn": REWARD}}},
        "secrets": {"JUDGE_KEY": SECRET},
    }
    created = call.ok("POST", "/v2/finetuning/jobs", json=body)
    got = call.ok("GET", f"/v2/finetuning/jobs/{created['id']}")
    assert got["secrets"] == {"JUDGE_KEY": "**********"}
    valid("getFinetuningJob", got)
    call.ok("GET", "/v2/finetuning/jobs")
    # A secret of the wrong type is refused without quoting it.
    bad = call("POST", "/v2/finetuning/jobs", json={**body, "secrets": {"K": [SECRET]}})
    assert bad.status_code == 422
    assert [text for text in call.texts if SECRET in text] == []


# -- 3. the columns of each task come from dataset_files, in both dialects ----------------


def _job_body(dialect: str, task: str, dataset: str) -> dict[str, Any]:
    if dialect == "platform":
        params = {"base_model": BASE_MODEL, "task": task}
        return {"params": params, "dataset": f"file_uploads/{dataset}", "repo": "rp"}
    return {"base_model": BASE_MODEL, "task": task, "dataset": dataset, "repo": "rp"}


@pytest.mark.parametrize("dialect", ["spec", "platform"])
def test_classification_trains_on_text_and_label(dialect: str) -> None:
    assert TASK_COLUMNS["classification"] == ("text", "label")
    call = Caller(dialect)
    call.dataset("pairs", SFT_ROWS)
    call.dataset("labelled", LABELLED)
    call.repo("rp")
    wrong = call.ok(
        "POST", "/v2/finetuning/jobs", json=_job_body(dialect, "classification", "pairs")
    )
    ended = call.finish_job(wrong.get("id") or wrong["uuid"])
    assert ended["status"] == "errored"
    assert "lacks column(s) text, label needed for task 'classification'" in ended["error"]
    right = call.ok(
        "POST", "/v2/finetuning/jobs", json=_job_body(dialect, "classification", "labelled")
    )
    assert call.finish_job(right.get("id") or right["uuid"])["status"] == "completed"
    # The adapter learned to label a text.
    answer = call.ok(
        "POST",
        f"/{call.emulator.tenant}/deployments/v2/llms/{BASE_MODEL}/generate",
        json={"inputs": LABELLED[1]["text"], "parameters": {"adapter_id": "rp/2"}},
    )
    assert answer["generated_text"] == "technical"


@pytest.mark.parametrize("dialect", ["spec", "platform"])
@pytest.mark.parametrize("task", sorted(TASK_COLUMNS))
def test_every_task_needs_exactly_the_columns_dataset_files_names(dialect: str, task: str) -> None:
    call = Caller(dialect)
    row = dict.fromkeys(TASK_COLUMNS[task], "x y z")
    call.dataset("fits", [row, row])
    call.dataset("empty-handed", [{"other": "x"}])
    call.repo("rp")
    extra: dict[str, Any] = {}
    if task == "grpo":
        fns = {
            "functions": {
                "reward": {"encodedFn" if dialect == "platform" else "encoded_fn": REWARD}
            }
        }
        extra = {"rewardFns": fns} if dialect == "platform" else {"reward_fns": fns}
    for dataset, outcome in (("fits", "completed"), ("empty-handed", "errored")):
        body = _job_body(dialect, task, dataset)
        (body["params"] if dialect == "platform" else body).update(extra)
        job = call.ok("POST", "/v2/finetuning/jobs", json=body)
        assert call.finish_job(job.get("id") or job["uuid"])["status"] == outcome, dataset


# -- 4. the seed stores every setting and shows it back -------------------------------------


@pytest.mark.parametrize("dialect", ["spec", "default"])
def test_the_seed_shows_back_every_training_setting(dialect: str) -> None:
    call = Caller(dialect)
    call.dataset("ds", SFT_ROWS)
    call.repo("rp")
    body = {"base_model": BASE_MODEL, "dataset": "ds", "repo": "rp", **TRAINING}
    created = call.ok(
        "POST", "/v2/finetuning/jobs", json={**body, "compute_spec": TRAINING_COMPUTE}
    )
    got = call.ok("GET", f"/v2/finetuning/jobs/{created['id']}")
    for name, value in {**TRAINING, "compute_spec": TRAINING_COMPUTE}.items():
        assert got[name] == value, name
    valid("getFinetuningJob", got)
    (listed,) = call.ok("GET", "/v2/finetuning/jobs")["data"]
    assert listed["lr_scheduler"] == TRAINING["lr_scheduler"]
    grpo = {
        **body,
        "task": "grpo",
        "reward_fns": {
            "functions": {"reward": {"encoded_fn": REWARD}},
            "runtime": {"packages": ["rapidfuzz==3.9.0"]},
        },
        **GRPO,
    }
    job = call.ok("POST", "/v2/finetuning/jobs", json=grpo)
    got = call.ok("GET", f"/v2/finetuning/jobs/{job['id']}")
    for name in ("reward_fns", *GRPO):
        assert got[name] == grpo[name], name
    valid("getFinetuningJob", got)


@pytest.mark.parametrize("dialect", ["spec", "default"])
def test_the_seed_shows_back_every_deployment_setting_but_the_token(dialect: str) -> None:
    call = Caller(dialect)
    body = {"name": "dep", "base_model": BASE_MODEL, **SERVING, "hf_token": "hf_secret_51c2"}
    created = call.ok("POST", "/v2/deployments", json=body)
    got = call.ok("GET", "/v2/deployments/dep")
    for answer in (created, got, call.ok("GET", "/v2/deployments")["data"][0]):
        for name, value in SERVING.items():
            assert answer[name] == value, name
        assert answer["accelerator"] == "a10_24gb_100"
        assert "hf_token" not in answer
    valid("getDeployment", got)
    valid("createDeployment", created)
    # Every field of DeploymentConfig is covered, so a new one must be added here.
    assert set(DeploymentConfig.model_fields) - set(SERVING) == {
        "accelerator",
        "hf_token",
        "description",
    }
    call.ok("GET", "/v2/deployments/dep")
    changes = {"max_num_batched_tokens": 2048, "custom_args": [], "backend": "v3"}
    call.ok("PUT", "/v2/deployments/dep", json={**changes, "hf_token": "hf_secret_51c2"})
    got = call.ok("GET", "/v2/deployments/dep")
    for name, value in {**SERVING, **changes}.items():
        assert got[name] == value, name
    assert [text for text in call.texts if "hf_secret_51c2" in text] == []


@pytest.mark.parametrize(
    ("dialect", "path"), [("spec", "jobs"), ("default", "jobs"), ("platform", "")]
)
def test_a_batch_job_shows_back_its_server_settings_but_the_token(dialect: str, path: str) -> None:
    call = Caller(dialect)
    row = {
        "custom_id": "r1",
        "method": "POST",
        "url": "/v1/chat/completions",
        "body": {"model": "", "messages": [{"role": "user", "content": "hi"}]},
    }
    call.dataset("batch-in", [row])
    server = {
        "custom_args": ["--max-batch-size", "4"],
        "lorax_image_tag": "lorax:2025.10",
        "quantization": "fp8",
        "backend": "v3",
    }
    if dialect == "platform":
        config = {camel(k): v for k, v in server.items()}
        body = {
            "dataset": "file_uploads/batch-in",
            "serverConfig": {"baseModel": BASE_MODEL, "hfToken": "hf_b4tch", **config},
            "output": "s3://bucket/scores/",
            "description": "marker",
        }
        job = call.ok("POST", "/v2/batch-inference", json=body)
        got = call.ok("GET", f"/v2/batch-inference/{job['uuid']}")
        assert got["originalRequest"]["serverConfig"] == {"baseModel": BASE_MODEL, **config}
        seed = call.state()["batch_jobs"][0]
        # The provider sends these beside `serverConfig`; they are kept too.
        assert (seed["output"], seed["description"]) == ("s3://bucket/scores/", "marker")
    else:
        body = {"base_model": BASE_MODEL, "dataset": "batch-in", "hf_token": "hf_b4tch", **server}
        job = call.ok("POST", "/v2/batch-inference/jobs", json=body)
        seed = got = call.ok("GET", f"/v2/batch-inference/jobs/{job['id']}")
        valid("getBatchInferenceJob", got)
    for name, value in server.items():
        assert seed[name] == value, name
    assert [text for text in call.texts if "hf_b4tch" in text] == []


# -- 5. production's deployment `config` reports every stored setting -----------------------


@pytest.mark.parametrize(
    ("dialect", "created_as"),
    [("platform", "platform"), ("default", "platform"), ("default", "seed")],
)
def test_productions_config_reports_every_setting_so_a_diff_is_empty(
    dialect: str, created_as: str
) -> None:
    call = Caller(dialect)
    if created_as == "platform":
        config = {platform_name(k): v for k, v in SERVING.items()}
        body = platform_deployment("dep", **config, hfToken="hf_secret_51c2")
    else:
        body = {"name": "dep", "base_model": BASE_MODEL, **SERVING, "hf_token": "hf_secret_51c2"}
    call.ok("POST", "/v2/deployments", json=body)
    answer = call.ok("GET", "/v2/deployments/dep", headers=SDK)
    reported = answer["data"]["config"]
    for name, value in SERVING.items():
        assert reported[platform_name(name)] == value, name
    assert "hfToken" not in reported
    assert answer["data"]["accelerator"] == {"id": "a10_24gb_100"}
    (listed,) = call.ok("GET", "/v2/deployments", headers=SDK)["data"]
    assert listed["config"] == reported
    wanted = DeploymentConfig.model_validate({**SERVING, "accelerator": "a10_24gb_100"})
    assert Deployment.model_validate(answer).differs_from(wanted) == {}
    assert [text for text in call.texts if "hf_secret_51c2" in text] == []
