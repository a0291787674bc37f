"""The Celery campaign's scenarios: a triggerer dies, a worker dies, 50 mapped fine-tunes.

They run at the same time on one `CeleryStack` (two workers, two triggerers) and coordinate
through `CeleryContext`, so that a kill only ever hits what its scenario means to kill:

* `triggerer_failover` kills the triggerer that polls its job, waits for the *other* one to
  poll it, then starts the killed one again (``failover_done``);
* `worker_crash` kills the worker running its blocking fine-tune once no other task is on a
  worker (``workers_lock``), waits for the retry on the *other* worker, then starts the
  killed one again (``worker_restarted``);
* `mapped` starts once both are back, so its 50 tasks see two workers and two triggerers.

Every emulator trains until its scenario moves the job on (`STUCK`), so a kill always lands
mid-wait however loaded the machine is. Every retry is reported (`report_tries`): the
3.3.2 fast-trigger race is named, and any other unexplained retry fails the scenario.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import cast

from tests.system.harness.celery_stack import CeleryStack
from tests.system.scenarios.helpers import (
    STUCK,
    complete,
    failure_detail,
    report_tries,
    trigger_logs,
    wait,
    wait_for_log,
)
from tests.system.scenarios.registry import Context, ScenarioOutput

FAILOVER = "sys_celery_triggerer_failover"
WORKER_CRASH = "sys_celery_worker_crash"
MAPPED = "sys_celery_mapped"
MAPPED_COUNT = 50  # as in dags/system_celery_finetunes.py
#: More than one triggerer's [triggerer] capacity (CeleryCampaign sets 40): with all 50
#: deferred at once, both triggerers must hold some.
TRIGGERER_CAPACITY = 40


@dataclass
class CeleryContext(Context):
    """`Context` plus what the Celery scenarios wait on each other for."""

    #: Held while a worker is killed, and while a scenario sends a task to the workers.
    workers_lock: threading.Lock = field(default_factory=threading.Lock)
    failover_done: threading.Event = field(default_factory=threading.Event)
    worker_restarted: threading.Event = field(default_factory=threading.Event)

    @property
    def celery(self) -> CeleryStack:
        return cast(CeleryStack, self.stack)


CeleryScenario = Callable[[CeleryContext, ScenarioOutput], None]


def triggerer_failover(ctx: CeleryContext, out: ScenarioOutput) -> None:
    """SIGKILL the triggerer polling a deferred fine-tune: the other triggerer takes the
    trigger over and polls the job to the end; one job, the task succeeds."""
    dag, stack, emulator = FAILOVER, ctx.celery, ctx.emulators["pb_celery_failover"]
    try:
        run = ctx.trigger(dag, "failover")
        stack.wait_for_task_state(dag, run, "finetune", {"deferred"}, timeout=180)
        [job] = emulator.admin.state()["finetuning_jobs"]
        polled = f"fine-tuning job {job['id']}: status=training"

        def pollers() -> list[int]:
            return [
                t for t, text in trigger_logs(stack, dag, run, "finetune").items() if polled in text
            ]

        [old] = wait(ctx, pollers, 120, "the first poll of the job")
        victim = stack.triggerer_of_job(old)
        out.note(f"kill -9 {victim} (triggerer job {old}) while job {job['id']} is training")
        stack.kill_component(victim)
        killed = time.monotonic()
        [new] = wait(
            ctx, lambda: [t for t in pollers() if t != old], 120, "a poll by another triggerer"
        )
        survivor = stack.triggerer_of_job(new)
        out.note(
            f"{survivor} (triggerer job {new}) polled job {job['id']} "
            f"{time.monotonic() - killed:.0f} s after the kill"
        )
        assert survivor != victim, f"the trigger went to a restarted {victim}, not the other one"
        stack.start_component(victim)  # back to two triggerers for the mapped scenario
        out.note(f"{victim} started again (triggerer job {stack.triggerer_jobs[victim][-1]})")
    finally:
        ctx.failover_done.set()
    with ctx.workers_lock:  # the resume goes to a worker: not while one is being killed
        complete(emulator, job["id"])
    final = stack.wait_for_run(dag, run, timeout=180)
    report_tries(ctx, out, dag, run)
    assert final == "success", failure_detail(stack, dag, run)
    logs = trigger_logs(stack, dag, run, "finetune")
    assert "Trigger fired event" in logs[new], "the surviving triggerer did not fire the event"
    assert "Trigger fired event" not in logs[old]
    state = emulator.admin.state()
    assert state["counts"]["finetuning_jobs"] == 1, state["finetuning_jobs"]
    assert state["finetuning_jobs"][0]["status"] == "completed"
    assert stack.xcom(dag, run, "finetune") == "failover-router/1"
    out.note("one job, polled to completion by the other triggerer; task succeeded")


def _others_on_workers(ctx: CeleryContext, mine: str) -> list[str]:
    """Task instances of the campaign's other runs that are queued or running."""
    runs = {run for _, run in ctx.runs if run != mine}
    if not runs:
        return []
    busy = ("queued", "running", "scheduled", "restarting")
    return [
        f"{ti['dag_id']}/{ti['task_id']}[{ti['map_index']}] {ti['state']}"
        for ti in ctx.stack.task_instances_of_runs(runs)
        if ti["state"] in busy
    ]


def worker_crash(ctx: CeleryContext, out: ScenarioOutput) -> None:
    """SIGKILL the Celery worker running a blocking fine-tune: the scheduler fails the
    silent try after [scheduler] task_instance_heartbeat_timeout, the retry runs on the
    other worker and re-attaches to the job; one job."""
    dag, stack, emulator = WORKER_CRASH, ctx.celery, ctx.emulators["pb_celery_worker_crash"]
    try:
        run = ctx.trigger(dag, "workercrash")
        wait_for_log(stack, dag, run, "finetune", "status=training", 180, try_number=1)
        [job] = emulator.admin.state()["finetuning_jobs"]
        with ctx.workers_lock:
            wait(
                ctx,
                lambda: not _others_on_workers(ctx, run),
                180,
                "no other task on a worker",
            )
            ti = stack.task_instance(dag, run, "finetune")
            assert (ti["state"], ti["try_number"]) == ("running", 1), ti
            [pid] = wait(ctx, lambda: stack.task_runner_pids(ti["id"]), 30, "the task process")
            victim = stack.worker_of(pid)
            assert victim is not None, f"task process {pid} is under no worker"
            out.note(
                f"kill -9 {victim} (all its processes) while try 1 (pid {pid}) blocks on job "
                f"{job['id']}"
            )
            stack.kill_component(victim)
            killed = time.monotonic()
        retry = wait(
            ctx,
            lambda: (
                t
                if (t := stack.task_instance(dag, run, "finetune"))["try_number"] == 2
                and t["state"] == "running"
                else None
            ),
            180,
            "try 2 to run",
        )
        [pid2] = wait(ctx, lambda: stack.task_runner_pids(retry["id"]), 60, "try 2's process")
        runner = stack.worker_of(pid2)
        out.note(f"try 2 running on {runner} (pid {pid2}) {time.monotonic() - killed:.0f} s after")
        assert runner is not None, f"try 2's process {pid2} is under no worker"
        assert runner != victim, f"try 2 ran on {runner}, the worker that was killed"
        wait_for_log(stack, dag, run, "finetune", f"re-attaching to job {job['id']}", 120)
        stack.start_component(victim)
        stack.wait_worker_ready(victim)
        out.note(f"{victim} started again")
    finally:
        ctx.worker_restarted.set()
    complete(emulator, job["id"])
    final = stack.wait_for_run(dag, run, timeout=180)
    report_tries(
        ctx,
        out,
        dag,
        run,
        expected={("finetune", 1): f"the test SIGKILLed {victim}, which ran try 1"},
    )
    assert final == "success", failure_detail(stack, dag, run)
    ti = stack.task_instance(dag, run, "finetune")
    assert ti["try_number"] == 2, ti
    scheduler = stack.component_log("scheduler")
    detected = [
        line
        for line in scheduler.splitlines()
        if "Detected a task instance without a heartbeat" in line and run in line
    ]
    assert detected, "the scheduler never failed try 1 for its missing heartbeat"
    timeout = stack.env["AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT"]
    out.note(f"the scheduler failed try 1: no heartbeat for {timeout} s (heartbeat timeout)")
    state = emulator.admin.state()
    assert state["counts"]["finetuning_jobs"] == 1, state["finetuning_jobs"]
    assert state["finetuning_jobs"][0]["status"] == "completed"
    assert stack.xcom(dag, run, "finetune") == "worker-crash-router/1"
    out.note(f"try 2 on {runner} re-attached to job {job['id']}; one job; task succeeded")


def mapped(ctx: CeleryContext, out: ScenarioOutput) -> None:
    """50 mapped deferrable fine-tunes over two workers and two triggerers: both workers
    ran some (worker logs), both triggerers held some (trigger logs); 50 jobs, completed."""
    dag, stack, emulator = MAPPED, ctx.celery, ctx.emulators["pb_celery_mapped"]
    for event, what in ((ctx.failover_done, "failover"), (ctx.worker_restarted, "worker crash")):
        assert event.wait(timeout=600), f"the {what} scenario never gave its component back"
    run = ctx.trigger(dag, "mapped")
    wait(
        ctx,
        lambda: ctx.recorder.max_in_state(dag, run, "deferred") == MAPPED_COUNT,
        300,
        f"all {MAPPED_COUNT} mapped fine-tunes to be deferred at once",
    )
    connections = stack.sql(
        "SELECT count(*) AS n FROM pg_stat_activity WHERE backend_type = 'client backend'"
    )[0]["n"]
    out.note(f"all {MAPPED_COUNT} deferred; PostgreSQL client connections then: {connections}")
    jobs = emulator.admin.state()["finetuning_jobs"]
    assert len(jobs) == MAPPED_COUNT, len(jobs)
    for job in jobs:
        complete(emulator, job["id"])
    final = stack.wait_for_run(dag, run, timeout=300)
    report_tries(ctx, out, dag, run)
    assert final == "success", failure_detail(stack, dag, run)
    state = emulator.admin.state()
    assert state["counts"]["finetuning_jobs"] == MAPPED_COUNT, state["counts"]
    assert all(j["status"] == "completed" for j in state["finetuning_jobs"])

    tis = [ti for ti in stack.task_instances(dag, run) if ti["task_id"] == "finetune"]
    assert len(tis) == MAPPED_COUNT, len(tis)
    assert all(ti["state"] == "success" for ti in tis), failure_detail(stack, dag, run)
    per_triggerer: dict[str, int] = {}
    for ti in tis:
        for job_id in trigger_logs(stack, dag, run, "finetune", ti["map_index"]):
            name = stack.triggerer_of_job(job_id)
            per_triggerer[name] = per_triggerer.get(name, 0) + 1
    # Each worker logs every workload it runs ("Executing workload in Celery: ...
    # ti=TaskInstanceDTO(id=UUID('<ti id>'), ...)"): a mapped task runs twice (it defers,
    # then resumes), more with a retry.
    ids = {ti["id"] for ti in tis}
    per_worker = {
        name: sum(
            1
            for line in stack.worker_log(name).splitlines()
            if "Executing workload in Celery" in line
            and (m := re.search(r"ti=TaskInstanceDTO\(id=UUID\('([0-9a-f-]+)'\)", line))
            and m.group(1) in ids
        )
        for name in stack.worker_names
    }
    out.note(f"mapped task runs per worker: {per_worker}")
    out.note(f"trigger logs per triggerer: {per_triggerer}")
    assert all(per_worker.values()), f"a worker ran none of the mapped tasks: {per_worker}"
    assert sorted(per_triggerer) == sorted(stack.triggerer_names), per_triggerer
    adapters = {stack.xcom(dag, run, "finetune", map_index=ti["map_index"]) for ti in tis}
    assert adapters == {f"mapped-router-{i}/1" for i in range(MAPPED_COUNT)}
    out.note(f"{MAPPED_COUNT} jobs, all completed; {MAPPED_COUNT} adapters")


#: name -> (function, DAG, emulator connection), in the order of the summary.
SCENARIOS: dict[str, tuple[CeleryScenario, str, str]] = {
    "triggerer_failover": (triggerer_failover, FAILOVER, "pb_celery_failover"),
    "worker_crash": (worker_crash, WORKER_CRASH, "pb_celery_worker_crash"),
    "mapped": (mapped, MAPPED, "pb_celery_mapped"),
}
EMULATORS = {conn_id: STUCK for _, _, conn_id in SCENARIOS.values()}
