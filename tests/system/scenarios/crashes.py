"""Processes die mid-work: the triggerer while it waits, a task right after its job exists."""

from __future__ import annotations

import time

from tests.system.harness import EmulatorProcess
from tests.system.scenarios.helpers import (
    STUCK,
    complete,
    failure_detail,
    kill_task_runner,
    report_tries,
    trigger_logs,
    wait,
    wait_for_log,
)
from tests.system.scenarios.registry import Context, ScenarioOutput, scenario


@scenario(
    dags=("sys_triggerer_restart",),
    emulators={"pb_restart": STUCK},
    datasets={"pb_restart": ("tickets",)},
    databases=("sqlite", "postgres"),
)
def triggerer_restart(ctx: Context, out: ScenarioOutput) -> None:
    """SIGKILL the triggerer while the fine-tune is waited on; start a new one.

    The job trains until the test moves it on (emulator `advance`), so the kill always
    lands mid-wait however loaded the machine is; it is moved on only after the new
    triggerer has polled it.
    """
    dag, stack, emulator = "sys_triggerer_restart", ctx.stack, ctx.emulators["pb_restart"]
    try:
        run = ctx.trigger(dag, "restart")
        stack.wait_for_task_state(dag, run, "finetune", {"deferred"}, timeout=180)
        [job] = emulator.admin.state()["finetuning_jobs"]
        polled = f"fine-tuning job {job['id']}: status=training"

        def pollers() -> list[int]:
            return [
                t for t, text in trigger_logs(stack, dag, run, "finetune").items() if polled in text
            ]

        [old] = wait(ctx, pollers, 120, "the first poll of the job in the triggerer")
        with ctx.triggerer_lock:
            out.note(f"kill -9 the triggerer (job {old}) while job {job['id']} is training")
            stack.kill_component("triggerer")
            killed = time.monotonic()
            stack.start_component("triggerer")
            [new] = wait(
                ctx, lambda: [t for t in pollers() if t != old], 90, "a poll by the new triggerer"
            )
            out.note(
                f"new triggerer (job {new}) polled job {job['id']} "
                f"{time.monotonic() - killed:.0f} s after the kill"
            )
    finally:
        ctx.restart_done.set()
    complete(emulator, job["id"])
    final = stack.wait_for_run(dag, run, timeout=180)
    report_tries(ctx, out, dag, run)
    assert final == "success", failure_detail(stack, dag, run)
    logs = trigger_logs(stack, dag, run, "finetune")
    assert "Trigger fired event" in logs[new], "the new triggerer did not fire the event"
    assert "Trigger fired event" not in logs[old]
    assert f"fine-tuning job {job['id']}: status=completed" in logs[new]
    state = emulator.admin.state()
    assert state["counts"]["finetuning_jobs"] == 1, state["finetuning_jobs"]
    assert state["finetuning_jobs"][0]["status"] == "completed"
    assert stack.xcom(dag, run, "finetune") == "restart-router/1"
    out.note("one job, polled to completion by the new triggerer, not re-created")


def _crash_outcome(
    ctx: Context, out: ScenarioOutput, dag: str, run: str, emulator: EmulatorProcess, job_id: str
) -> None:
    final = ctx.stack.wait_for_run(dag, run, timeout=180)
    report_tries(ctx, out, dag, run, expected={("finetune", 1): "the test killed try 1"})
    assert final == "success", failure_detail(ctx.stack, dag, run)
    ti = ctx.stack.task_instance(dag, run, "finetune")
    assert ti["try_number"] == 2, ti
    state = emulator.admin.state()
    assert state["counts"]["finetuning_jobs"] == 1, state["finetuning_jobs"]
    retry_log = ctx.stack.task_log(dag, run, "finetune", try_number=2)
    reattached = (
        f"re-attaching to job {job_id}" in retry_log
        or f"reusing completed job {job_id}" in retry_log
    )
    assert reattached, retry_log[-3000:]
    out.note(f"try 2 re-attached to job {job_id}; still exactly one job")


@scenario(
    dags=("sys_worker_crash",),
    emulators={"pb_worker_crash": {}},
    datasets={"pb_worker_crash": ("tickets",)},
)
def worker_crash(ctx: Context, out: ScenarioOutput) -> None:
    """kill -9 the task right after its job was created, before it deferred."""
    dag, stack, emulator = "sys_worker_crash", ctx.stack, ctx.emulators["pb_worker_crash"]
    run = ctx.trigger(dag, "crash")
    wait_for_log(stack, dag, run, "finetune", "crash window: job", 180, try_number=1)
    [job] = emulator.admin.state()["finetuning_jobs"]
    ti = stack.task_instance(dag, run, "finetune")
    assert ti["state"] == "running", ti
    assert ti["try_number"] == 1, ti
    kill_task_runner(ctx, out, ti, f"job {job['id']} exists, the task has not deferred")
    assert "deferred" not in ctx.recorder.states(dag, run, "finetune")
    _crash_outcome(ctx, out, dag, run, emulator, job["id"])


@scenario(
    dags=("sys_create_dropped",),
    emulators={"pb_create_dropped": {}},
    datasets={"pb_create_dropped": ("tickets",)},
)
def create_dropped(ctx: Context, out: ScenarioOutput) -> None:
    """The create POST's response is dropped; the task dies while looking the job up."""
    dag, stack, emulator = "sys_create_dropped", ctx.stack, ctx.emulators["pb_create_dropped"]
    # The lookups of the job list are slow (the one before the create and the one after
    # the lost response): the second is the window in which the task is killed.
    emulator.admin.add_fault("slow", method="GET", path="/v2/finetuning/jobs", delay=8, count=2)
    emulator.admin.add_fault("drop_after", method="POST", path="/v2/finetuning/jobs")
    run = ctx.trigger(dag, "dropped")
    wait_for_log(stack, dag, run, "finetune", "create outcome unknown", 180, try_number=1)
    [job] = emulator.admin.state()["finetuning_jobs"]
    ti = stack.task_instance(dag, run, "finetune")
    assert ti["state"] == "running", ti
    assert ti["try_number"] == 1, ti
    kill_task_runner(
        ctx, out, ti, f"the create response was dropped (job {job['id']} exists); task in lookup"
    )
    _crash_outcome(ctx, out, dag, run, emulator, job["id"])
    assert emulator.admin.faults()["rules"] == [], "a scripted fault was never hit"
