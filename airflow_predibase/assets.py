"""Airflow Assets for Predibase resources, for data-aware scheduling.

`FinetuneOperator` emits `adapter_asset(repo)` each time it produces a new adapter version,
with the adapter ID and the training summary in the event's extra (`adapter_event_extra`).
A scoring DAG runs on it with ``schedule=[adapter_asset("my-repo")]`` and reads
``triggering_asset_events``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow_predibase.client.models.training import TrainingSummary


def adapter_asset(repo: str) -> Any:
    """The Asset standing for the adapter repository `repo`."""
    from airflow.providers.common.compat.sdk import Asset

    return Asset(name=f"predibase-adapters/{repo}", uri=f"predibase://adapters/{repo}")


def adapter_event_extra(
    adapter_id: str, job_id: str, base_model: str | None, summary: TrainingSummary | None
) -> dict[str, Any]:
    """The extra of an `adapter_asset` event: `adapter_id`, `job_id`, `base_model`, and
    `training`, the job's `TrainingSummary` as JSON (None fields left out), e.g.
    ``extra["training"]["best_validation_loss"]``."""
    extra: dict[str, Any] = {"adapter_id": adapter_id, "job_id": job_id, "base_model": base_model}
    if summary is not None:
        extra["training"] = summary.model_dump(mode="json", exclude_none=True)
    return extra
