"""A local Predibase: the control and serving planes over real HTTP, with real lifecycles.

Three ways in (see docs/emulator.md):

- ``python -m airflow_predibase.emulator --port 8080`` (or ``predibase-emulator``);
- ``EmulatorServer`` in Python: a context manager serving on loopback from a thread;
- the pytest fixtures ``predibase_emulator`` and ``predibase_emulator_app``.

No Airflow imports anywhere in this package. Names are imported lazily, because pytest
imports this package (for the fixtures) in every test run of a project that has it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow_predibase.emulator.admin_client import AdminClient
    from airflow_predibase.emulator.app import EmulatorApp, create_app
    from airflow_predibase.emulator.clock import Clock, ManualClock, SystemClock
    from airflow_predibase.emulator.config import PROFILES, EmulatorConfig, TimingProfile
    from airflow_predibase.emulator.server import EmulatorServer

__all__ = [
    "PROFILES",
    "AdminClient",
    "Clock",
    "EmulatorApp",
    "EmulatorConfig",
    "EmulatorServer",
    "ManualClock",
    "SystemClock",
    "TimingProfile",
    "create_app",
]

_HOMES = {
    "AdminClient": "admin_client",
    "EmulatorApp": "app",
    "create_app": "app",
    "Clock": "clock",
    "ManualClock": "clock",
    "SystemClock": "clock",
    "PROFILES": "config",
    "EmulatorConfig": "config",
    "TimingProfile": "config",
    "EmulatorServer": "server",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{home}"), name)
