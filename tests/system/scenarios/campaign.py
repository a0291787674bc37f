"""A campaign: one stack per database, its scenarios run on it at the same time.

A campaign starts one stack, runs the scenarios of its database in threads, then the ones
declared ``last`` (the secrets check), tears everything down, and keeps the outcome of each
scenario; test_system.py then reports them one by one.
"""

from __future__ import annotations

import concurrent.futures
import os
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tests.system.harness import (
    ABORT,
    PostgresUnavailable,
    StackSettings,
    StateRecorder,
    TriggerTableRecorder,
    running_stack,
    secret_token,
)
from tests.system.scenarios.helpers import ROOT, upload_tickets
from tests.system.scenarios.registry import Context, Scenario, ScenarioOutput, scenarios_for

SYSTEM_DAGS = ROOT / "tests" / "system" / "dags"
DAG_SOURCES = [
    ROOT / "dags_examples" / "predibase_retraining.py",
    ROOT / "dags_examples" / "data",
    *sorted(SYSTEM_DAGS.glob("*.py")),
]
#: A trigger's first poll waits min(poll_interval, 5 s): 5 s keeps triggers from firing
#: within Airflow 3.3.2's fast-trigger race window (see helpers.UPSTREAM_RACE).
POLL_INTERVAL = "5"


@dataclass
class Outcome:
    name: str
    error: BaseException | None
    seconds: float
    output: ScenarioOutput


@dataclass
class Campaign:
    db: str
    scenarios: tuple[str, ...]
    outcomes: dict[str, Outcome] = field(default_factory=dict)
    unavailable: str | None = None
    startup_seconds: float = 0.0
    started_at: float = 0.0  # time.monotonic()
    ended_at: float = 0.0

    @property
    def wall_seconds(self) -> float:
        return self.ended_at - self.started_at


def run_campaign(db: str, *, when_chain_done: Callable[[], None] | None = None) -> Campaign:
    """Start a stack on `db`, run its scenarios concurrently, then the last ones; tear down.

    `when_chain_done` is called (in a thread) once the clean chain run has finished: the
    busiest part of the campaign is then over, and another campaign can start.
    """
    scenarios = scenarios_for(db)
    campaign = Campaign(db, tuple(s.name for s in scenarios), started_at=time.monotonic())
    threaded = [s for s in scenarios if not s.last]
    emulators: dict[str, Any] = {}
    datasets: dict[str, tuple[str, ...]] = {}
    dags: set[str] = set()
    for each in threaded:
        emulators.update(each.emulators)
        datasets.update(each.datasets)
        dags.update(each.dags)
    token = secret_token()
    started = campaign.started_at
    print(f"\n[system {db}] starting a stack for: {', '.join(campaign.scenarios)}", flush=True)
    try:
        with running_stack(
            DAG_SOURCES,
            emulators=emulators,
            database=db,
            token=token,
            env={
                "PREDIBASE_POLL_INTERVAL": POLL_INTERVAL,
                "PREDIBASE_EXAMPLES_WORKDIR": "{workdir}/examples",
            },
            settings=StackSettings(),
            keep_workdir=bool(os.environ.get("PREDIBASE_SYSTEM_KEEP")),
        ) as (stack, emus):
            print(f"[system {db}] workdir {stack.workdir}", flush=True)
            for conn_id, names in datasets.items():
                upload_tickets(emus[conn_id], list(names))
            stack.wait_for_dags(sorted(dags))
            campaign.startup_seconds = time.monotonic() - started
            print(f"[system {db}] stack up in {campaign.startup_seconds:.0f} s", flush=True)
            with StateRecorder(stack) as recorder, TriggerTableRecorder(stack) as triggers:
                ctx = Context(db, stack, emus, token, recorder, triggers, campaign.scenarios)
                if when_chain_done is not None:
                    threading.Thread(
                        target=lambda: ctx.chain_done.wait() and when_chain_done(),
                        name="when-chain-done",
                        daemon=True,
                    ).start()
                with concurrent.futures.ThreadPoolExecutor(len(threaded)) as pool:
                    futures = {s.name: pool.submit(_run_one, ctx, s) for s in threaded}
                    try:
                        for name, future in futures.items():
                            campaign.outcomes[name] = future.result()
                    except BaseException:  # Ctrl-C: stop every scenario's waits now
                        ABORT.set()
                        raise
            for each in scenarios:  # after the recorders' last samples
                if each.last:
                    campaign.outcomes[each.name] = _run_one(ctx, each)
    except PostgresUnavailable as error:
        campaign.unavailable = f"could not start a private PostgreSQL cluster: {error}"
        print(f"[system {db}] SKIPPED: {campaign.unavailable}", flush=True)
    campaign.ended_at = time.monotonic()
    print(f"[system {db}] campaign took {campaign.wall_seconds:.0f} s", flush=True)
    return campaign


def _run_one(ctx: Context, scenario: Scenario) -> Outcome:
    out = ScenarioOutput(ctx.db, scenario.name)
    started = time.monotonic()
    error: BaseException | None = None
    try:
        scenario.func(ctx, out)
    except BaseException as exc:  # reported by the scenario's test
        error = exc
        out.note(f"FAILED: {type(exc).__name__}: {str(exc)[:500]}")
        out.notes.append(traceback.format_exc())
    seconds = time.monotonic() - started
    out.note(f"{'passed' if error is None else 'failed'} in {seconds:.0f} s")
    return Outcome(scenario.name, error, seconds, out)
