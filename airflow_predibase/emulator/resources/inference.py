"""Choosing who answers a prompt: the base model, or an adapter on top of it.

Shared by the serving routes and batch inference, so a row scored in a batch gets the
answer a live request would.
"""

from __future__ import annotations

from airflow_predibase.emulator.errors import ApiError
from airflow_predibase.emulator.model_behaviour import base_answer
from airflow_predibase.emulator.resources.repos import Repos


def is_base(model: str | None, base_model: str, deployment: str | None) -> bool:
    """True when a request's model/adapter names the base model rather than an adapter."""
    return not model or model in (base_model, deployment)


def answer(
    repos: Repos,
    base_model: str,
    adapter_id: str | None,
    prompt: str,
    *,
    adapter_source: str | None = None,
    deployment: str | None = None,
) -> str:
    """The full answer to `prompt`, before any token limit or stop sequence."""
    if is_base(adapter_id, base_model, deployment):
        return base_answer(base_model)
    assert adapter_id is not None
    if adapter_source not in (None, "pbase"):
        raise ApiError(
            424,
            f"cannot load adapter {adapter_id!r} from {adapter_source}: the emulator serves "
            "Predibase adapters only (adapter_source pbase, ID <repo>/<version>)",
        )
    entry = repos.ready_version(adapter_id)
    if entry["base_model"] != base_model:
        raise ApiError(
            400,
            f"adapter {adapter_id} was trained on {entry['base_model']}, but this deployment "
            f"serves {base_model}",
            error_type="validation",
        )
    return repos.memory(adapter_id, entry).answer(prompt)
