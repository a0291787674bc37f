"""The Celery campaign: one CeleryExecutor stack on PostgreSQL and Redis (two workers, two
triggerers), the scenarios of `scenarios.py` run on it at the same time, then torn down."""

from __future__ import annotations

import concurrent.futures
import os
import time

from tests.system.celery.scenarios import (
    EMULATORS,
    SCENARIOS,
    TRIGGERER_CAPACITY,
    CeleryContext,
    CeleryScenario,
)
from tests.system.harness import ABORT, StackSettings, StateRecorder, TriggerTableRecorder
from tests.system.harness.celery_stack import running_celery_stack
from tests.system.harness.emulator_process import secret_token
from tests.system.scenarios.campaign import POLL_INTERVAL, Campaign, Outcome
from tests.system.scenarios.helpers import ROOT, upload_tickets
from tests.system.scenarios.registry import Scenario

DAGS = [ROOT / "tests" / "system" / "celery" / "dags" / "system_celery_finetunes.py"]
DB = "celery-postgres"
WORKERS = 2
TRIGGERERS = 2
WORKER_CONCURRENCY = 4


def celery_stack_settings() -> StackSettings:
    """The LocalExecutor campaigns' settings, plus the distributed ones (see
    docs/system_tests.md, "The Celery campaign")."""
    return StackSettings(
        # Up to 16 task instances queued or running (8 worker slots, 8 waiting in Redis).
        parallelism=16,
        extra_env={"AIRFLOW__TRIGGERER__CAPACITY": str(TRIGGERER_CAPACITY)},
    )


def run_celery_campaign() -> Campaign:
    """Start the stack, run the scenarios concurrently, tear down. Raises
    `RedisUnavailable` / `PostgresUnavailable` if a broker or a database cannot start."""
    campaign = Campaign(DB, tuple(SCENARIOS), started_at=time.monotonic())
    print(f"\n[system {DB}] starting a Celery stack for: {', '.join(SCENARIOS)}", flush=True)
    token = secret_token()
    try:
        with running_celery_stack(
            DAGS,
            emulators=EMULATORS,
            env={
                "PREDIBASE_POLL_INTERVAL": POLL_INTERVAL,
                "PREDIBASE_EXAMPLES_WORKDIR": "{workdir}/examples",
            },
            settings=celery_stack_settings(),
            workers=WORKERS,
            triggerers=TRIGGERERS,
            worker_concurrency=WORKER_CONCURRENCY,
            token=token,
            keep_workdir=bool(os.environ.get("PREDIBASE_SYSTEM_KEEP")),
        ) as (stack, emus):
            print(f"[system {DB}] workdir {stack.workdir}", flush=True)
            for emulator in emus.values():
                upload_tickets(emulator, ["tickets"])
            stack.wait_for_dags([dag for _, dag, _ in SCENARIOS.values()])
            campaign.startup_seconds = time.monotonic() - campaign.started_at
            print(f"[system {DB}] stack up in {campaign.startup_seconds:.0f} s", flush=True)
            with StateRecorder(stack) as recorder, TriggerTableRecorder(stack) as triggers:
                ctx = CeleryContext(DB, stack, emus, token, recorder, triggers, tuple(SCENARIOS))
                with concurrent.futures.ThreadPoolExecutor(len(SCENARIOS)) as pool:
                    futures = {
                        name: pool.submit(_run_one, ctx, name, func)
                        for name, (func, _, _) in SCENARIOS.items()
                    }
                    try:
                        for name, future in futures.items():
                            campaign.outcomes[name] = future.result()
                    except BaseException:  # Ctrl-C: stop every scenario's waits now
                        ABORT.set()
                        raise
    finally:
        campaign.ended_at = time.monotonic()
        print(f"[system {DB}] campaign took {campaign.wall_seconds:.0f} s", flush=True)
    return campaign


def _run_one(ctx: CeleryContext, name: str, func: CeleryScenario) -> Outcome:
    """`campaign._run_one` for a scenario that is not in the LocalExecutor registry."""
    from tests.system.scenarios.campaign import _run_one as run_registered

    # A CeleryContext is a Context: the registry's type names the base class.
    scenario = Scenario(name, func, (), {}, {}, (), False)  # type: ignore[arg-type]
    outcome: Outcome = run_registered(ctx, scenario)
    return outcome
