"""Deferrable triggers: one polling base, small subclasses per resource."""

from typing import Any


def __getattr__(name: str) -> Any:  # the event trigger, loaded on first use
    if name == "NewAdapterVersionTrigger":
        from airflow_predibase.triggers.adapter_versions import NewAdapterVersionTrigger

        return NewAdapterVersionTrigger
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
