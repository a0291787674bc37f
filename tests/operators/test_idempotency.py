"""The clear cycle comes from what Airflow does to max_tries; markers round-trip."""

from __future__ import annotations

from types import SimpleNamespace

from airflow_predibase.operators._idempotency import Marker, clear_cycle, marker_of


def context(max_tries: int, retries: int) -> dict[str, object]:
    return {"ti": SimpleNamespace(max_tries=max_tries, task=SimpleNamespace(retries=retries))}


def test_first_run_and_its_retries_are_cycle_zero():
    # A fresh task instance has max_tries == retries; retries do not change it.
    assert clear_cycle(context(max_tries=3, retries=3)) == 0


def test_a_clear_moves_to_a_new_cycle():
    # Cleared after try 2: Airflow sets max_tries = try_number + retries = 2 + 3.
    assert clear_cycle(context(max_tries=5, retries=3)) == 2


def test_marker_round_trips_and_ignores_other_task_instances():
    marker = Marker("0123456789abcdef", 2, 3)
    job = SimpleNamespace(description=f"weekly retrain {marker}")
    assert marker_of(job, "0123456789abcdef") == marker  # type: ignore[arg-type]
    assert marker_of(job, "fedcba9876543210") is None  # type: ignore[arg-type]
