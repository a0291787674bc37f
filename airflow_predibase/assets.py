"""Airflow Assets for Predibase resources, for data-aware scheduling.

`FinetuneOperator` emits `adapter_asset(repo)` each time it produces a new adapter version,
with the adapter ID in the event's extra. A scoring DAG runs on it with
``schedule=[adapter_asset("my-repo")]`` and reads ``triggering_asset_events``.
"""

from __future__ import annotations

from typing import Any


def adapter_asset(repo: str) -> Any:
    """The Asset standing for the adapter repository `repo`."""
    from airflow.providers.common.compat.sdk import Asset

    return Asset(name=f"predibase-adapters/{repo}", uri=f"predibase://adapters/{repo}")
