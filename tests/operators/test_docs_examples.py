"""The operator pages' examples of the platform's settings (docs/operators/*.md quote these
blocks verbatim, tests/test_docs_snippets.py checks it), run against the emulator."""

from __future__ import annotations

import json
from typing import Any

import pytest

from airflow_predibase.operators import (
    AirflowSecret,
    BatchInferenceOperator,
    DeployOperator,
    FinetuneOperator,
)
from tests.taskkit import make_context, on_wire, upload

ROWS = [{"prompt": "Reply politely: hi", "completion": "Hello."}]
BATCH_ROW = {
    "custom_id": "r1",
    "method": "POST",
    "url": "/v1/chat/completions",
    "body": {"model": "", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 4},
}


def ends_politely(prompt, completion, example):
    """1.0 when the completion ends with a full stop."""
    return 1.0 if completion.strip().endswith(".") else 0.0


@pytest.fixture
def secrets_in_airflow(monkeypatch: pytest.MonkeyPatch) -> None:
    conn = {"conn_type": "generic", "password": "hf_docs_example"}
    monkeypatch.setenv("AIRFLOW_CONN_HUGGINGFACE", json.dumps(conn))
    monkeypatch.setenv("AIRFLOW_VAR_JUDGE_API_KEY", "sk-docs-example")


def test_the_training_settings_example(wiretap: Any, client: Any):
    upload(client, "support-tickets", ROWS)
    finetune = FinetuneOperator(
        task_id="finetune",
        base_model="qwen3-8b",
        dataset="support-tickets",
        repo="support-router",
        hyperparameters={
            "epochs": 3,
            "learning_rate": 0.0002,
            "lr_scheduler": {"type": "cosine_with_restarts", "params": {"num_cycles": 2}},
            "optimizer": {"type": "adamw_torch"},
            "warmup_ratio": 0.05,
            "effective_batch_size": 16,
        },
        compute_spec={"requests": {"trainer": {"sku": "a100_80gb_100"}}},
    )
    finetune.poll_interval = 0.05
    assert finetune.execute(make_context(task_id="finetune")) == "support-router/1"
    assert on_wire(wiretap.bodies("POST", "/finetuning/jobs")[0], "warmup_ratio") == 0.05


def test_the_grpo_example(wiretap: Any, client: Any, secrets_in_airflow: None):
    upload(client, "support-prompts", ROWS)
    finetune_grpo = FinetuneOperator(
        task_id="finetune_grpo",
        base_model="qwen3-8b",
        dataset="support-prompts",
        repo="polite-router",
        task="grpo",
        # A function defined in the DAG file, and one imported on the worker at run time.
        reward_fns={
            "functions": [ends_politely, "tests.operators.rewards:length_reward"],
            "runtime": {"packages": ["rapidfuzz==3.9.0"]},
        },
        secrets={"JUDGE_API_KEY": AirflowSecret.variable("judge_api_key")},
        hyperparameters={
            "beta": 0.04,
            "num_generations": 8,
            "sampling_params": {"temperature": 0.9, "max_tokens": 256},
        },
    )
    finetune_grpo.poll_interval = 0.05
    assert finetune_grpo.execute(make_context(task_id="finetune_grpo")) == "polite-router/1"
    sent = wiretap.bodies("POST", "/finetuning/jobs")[0]
    assert on_wire(sent, "secrets") == {"JUDGE_API_KEY": "sk-docs-example"}


def test_the_serving_settings_example(wiretap: Any, secrets_in_airflow: None):
    deploy = DeployOperator(
        task_id="deploy",
        name="gated-llama",
        base_model="qwen3-8b",
        accelerator="a100_80gb_100",
        hf_token=AirflowSecret.connection("huggingface"),
        config={
            "backend": "v2",
            "custom_args": ["--max-batch-prefill-tokens", "8192"],
            "max_num_batched_tokens": 8192,
            "chunked_prefill": True,
            "request_logging_enabled": True,
        },
    )
    deploy.poll_interval = 0.05
    assert deploy.execute(make_context(task_id="deploy"))["action"] == "created"
    assert on_wire(wiretap.bodies("POST", "/deployments")[0], "hf_token") == "hf_docs_example"


def test_the_batch_server_example(wiretap: Any, client: Any, secrets_in_airflow: None):
    upload(client, "eval-batch", [BATCH_ROW])
    score = BatchInferenceOperator(
        task_id="score",
        base_model="qwen3-8b",
        dataset="eval-batch",
        server_config={"backend": "v3", "quantization": "fp8", "lorax_image_tag": "2025.10"},
        hf_token=AirflowSecret.connection("huggingface"),
    )
    score.poll_interval = 0.05
    assert score.execute(make_context(task_id="score"))["rows"] == 1
    assert on_wire(wiretap.bodies("POST", "batch-inference")[0], "backend") == "v3"
