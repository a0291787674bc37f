"""What the quality-gate, promotion and retention tests share: labelled tickets, adapters
trained on them (a good one, a bad one), and a deployment actually serving."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.taskkit import finetune_operator, make_context, upload

LABELS = ("billing", "shipping", "account")
TICKETS = [
    {"prompt": f"ticket {i}: {text}", "completion": label}
    for i, (text, label) in enumerate(
        [
            ("my invoice charged me twice", "billing"),
            ("where is my parcel", "shipping"),
            ("I cannot log in", "account"),
            ("refund the extra fee", "billing"),
            ("the courier lost my box", "shipping"),
            ("reset my password please", "account"),
        ]
    )
]
#: The same prompts with every label wrong: an adapter trained on it loses.
WRONG = [
    {"prompt": t["prompt"], "completion": LABELS[(LABELS.index(t["completion"]) + 1) % 3]}
    for t in TICKETS
]


def write_eval(path: Path, rows: list[dict[str, Any]] = TICKETS) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def train(client: Any, dataset: str, rows: list[dict[str, Any]], repo: str = "router") -> str:
    """An adapter of `repo` trained on `rows` (through FinetuneOperator): its ID."""
    upload(client, dataset, rows)
    op = finetune_operator(task_id=f"finetune_{dataset}", dataset=dataset, repo=repo)
    return str(op.execute(make_context(task_id=f"finetune_{dataset}")))


def deploy(name: str = "router", **overrides: Any) -> dict[str, Any]:
    """A deployment serving qwen3-8b, ready."""
    from airflow_predibase.operators.deployments import DeployOperator

    params: dict[str, Any] = {
        "task_id": f"deploy_{name}",
        "name": name,
        "base_model": "qwen3-8b",
        "accelerator": "a10_24gb",
        "min_replicas": 0,
        "max_replicas": 1,
        "poll_interval": 0.05,
        "deferrable": False,
    }
    params.update(overrides)
    result: dict[str, Any] = DeployOperator(**params).execute(make_context())
    return result
