"""The user-facing example of docs/emulator.md, run here so that it cannot rot.

(In a user's project this file needs nothing but the installed provider: the
`predibase_emulator` fixture comes from its pytest plugin.)
"""

import json

from airflow_predibase.client.models import (
    DeploymentRequest,
    FinetuningJobRequest,
    GenerateParameters,
    GenerateRequest,
    RepoRequest,
)
from airflow_predibase.hooks.predibase import PredibaseHook

TRAINING = [
    {"prompt": "My invoice is wrong", "completion": "billing"},
    {"prompt": "I was charged twice", "completion": "billing"},
    {"prompt": "The app crashes on start", "completion": "technical"},
    {"prompt": "Login button does nothing", "completion": "technical"},
]


def test_the_adapter_routes_tickets(predibase_emulator):
    # Each read moves a resource one state on: no sleeping, no waiting.
    predibase_emulator.admin.set_profile("instant")
    # The fixture pointed the `predibase_default` connection at the emulator.
    client = PredibaseHook().get_client()

    rows = "".join(json.dumps(row) + "\n" for row in TRAINING).encode()
    client.upload_dataset("tickets", rows, "tickets.jsonl")
    while not client.get_dataset("tickets").status.is_terminal:
        pass
    client.create_repo(RepoRequest(name="router"))
    job = client.create_finetuning_job(
        FinetuningJobRequest(base_model="qwen3-8b", dataset="tickets", repo="router")
    )
    while not job.status.is_terminal:
        job = client.get_finetuning_job(job.id)
    assert job.adapter_id == "router/1"

    client.create_deployment(DeploymentRequest(name="router", base_model="qwen3-8b"))
    while not client.get_deployment("router").status.is_terminal:
        pass
    answer = client.generate(
        "router",
        GenerateRequest(
            inputs="I think I was charged twice this month",
            parameters=GenerateParameters(adapter_id=job.adapter_id),
        ),
    )
    assert answer.generated_text == "billing"


def test_a_rate_limit_is_retried(predibase_emulator):
    # The next two calls to /v2/models get 429 with Retry-After: 0.
    predibase_emulator.admin.add_fault(
        "status", status=429, retry_after=0, count=2, path="/v2/models"
    )
    client = PredibaseHook().get_client()
    assert client.list_models()  # the client's retry policy got through both
