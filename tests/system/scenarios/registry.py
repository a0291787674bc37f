"""A scenario is declared once, with `@scenario(...)`; test_system.py collects the registry.

A scenario is a function ``(ctx, out)`` that drives its own DAG run through the REST API,
intervenes like a user or an operator would (kill a process, mark, clear), and asserts. Its
declaration says what it needs: the DAGs to wait for, the emulators (one per connection ID,
so that its faults, timings and counts are its own), the datasets to upload there first, and
the databases it runs on. Scenarios that touch shared things (the one triggerer) coordinate
through `ctx`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from tests.system.harness import (
    AirflowStack,
    EmulatorProcess,
    StateRecorder,
    TriggerTableRecorder,
)

DATABASES = ("sqlite", "postgres")


@dataclass
class ScenarioOutput:
    """What a scenario reports besides pass/fail: printed as it happens and in the summary."""

    db: str
    name: str
    notes: list[str] = field(default_factory=list)
    retries: list[str] = field(default_factory=list)

    def note(self, message: str) -> None:
        self.notes.append(message)
        print(f"[system {self.db}/{self.name}] {message}", flush=True)

    def retry(self, message: str) -> None:
        self.retries.append(message)
        self.note(f"retry used: {message}")


@dataclass
class Context:
    """What every scenario of one campaign shares: the stack and what watches it."""

    db: str
    stack: AirflowStack
    emulators: dict[str, EmulatorProcess]
    token: str
    recorder: StateRecorder
    trigger_table: TriggerTableRecorder
    scenarios: tuple[str, ...]
    #: Held by whoever needs the triggerer not to change under it (restart, mark failed).
    triggerer_lock: threading.Lock = field(default_factory=threading.Lock)
    restart_done: threading.Event = field(default_factory=threading.Event)
    chain_done: threading.Event = field(default_factory=threading.Event)
    runs: list[tuple[str, str]] = field(default_factory=list)
    trigger_lock: threading.Lock = field(default_factory=threading.Lock)

    def trigger(self, dag_id: str, scenario: str) -> str:
        with self.trigger_lock:  # spread the bursts of new runs (SQLite is one writer)
            run_id = self.stack.trigger(dag_id, f"{scenario}__{self.db}__{int(time.time())}")
            time.sleep(1.0)
        self.runs.append((dag_id, run_id))
        self.recorder.watch(dag_id, run_id)
        return run_id


ScenarioFunc = Callable[[Context, ScenarioOutput], None]


@dataclass(frozen=True)
class Scenario:
    name: str
    func: ScenarioFunc
    dags: tuple[str, ...]
    #: conn_id -> EmulatorProcess options, and the datasets to upload there first.
    emulators: Mapping[str, Mapping[str, Any]]
    datasets: Mapping[str, tuple[str, ...]]
    databases: tuple[str, ...]
    #: Runs after the others have finished, on everything they left behind (not a thread).
    last: bool


#: Every scenario by name, in the order they were declared.
SCENARIOS: dict[str, Scenario] = {}


def scenario(
    *,
    dags: tuple[str, ...] = (),
    emulators: Mapping[str, Mapping[str, Any]] | None = None,
    datasets: Mapping[str, tuple[str, ...]] | None = None,
    databases: tuple[str, ...] = ("sqlite",),
    last: bool = False,
) -> Callable[[ScenarioFunc], ScenarioFunc]:
    """Register the decorated function as the scenario named like it."""

    def register(func: ScenarioFunc) -> ScenarioFunc:
        name = func.__name__
        if name in SCENARIOS:
            raise ValueError(f"two scenarios are called {name}")
        unknown = set(databases) - set(DATABASES)
        if unknown:
            raise ValueError(f"scenario {name}: unknown databases {sorted(unknown)}")
        SCENARIOS[name] = Scenario(
            name, func, dags, emulators or {}, datasets or {}, databases, last
        )
        return func

    return register


def scenarios_for(db: str) -> tuple[Scenario, ...]:
    """The scenarios that run on `db`, in declaration order."""
    return tuple(s for s in SCENARIOS.values() if db in s.databases)
