"""Limits: a deadline on a job that never finishes, and ten waits in one triggerer."""

from __future__ import annotations

from tests.system.scenarios.helpers import (
    STUCK,
    complete,
    failure_detail,
    report_tries,
    trigger_logs,
    wait,
)
from tests.system.scenarios.registry import Context, ScenarioOutput, scenario

DEADLINE_SECONDS = 10.0  # as in dags/system_finetune_scenarios.py
MAPPED_DATASETS = tuple(f"tickets-{i}" for i in range(10))  # as in system_finetune_scenarios


@scenario(
    dags=("sys_deadline",),
    emulators={"pb_deadline": STUCK},
    datasets={"pb_deadline": ("tickets",)},
)
def deadline(ctx: Context, out: ScenarioOutput) -> None:
    """A short `timeout` on a job that never finishes: a timeout failure, the job cancelled."""
    dag, stack, emulator = "sys_deadline", ctx.stack, ctx.emulators["pb_deadline"]
    run = ctx.trigger(dag, "deadline")
    final = stack.wait_for_run(dag, run, timeout=180)
    assert final == "failed", failure_detail(stack, dag, run)
    ti = stack.task_instance(dag, run, "finetune")
    assert ti["state"] == "failed", ti
    assert ti["try_number"] == 1, ti  # a timeout is not retried
    assert "deferred" in ctx.recorder.states(dag, run, "finetune")
    [job] = emulator.admin.state()["finetuning_jobs"]
    log = stack.task_log(dag, run, "finetune")
    assert "PredibaseJobTimeout" in log, log[-3000:]
    assert f"timed out waiting for fine-tuning job {job['id']}" in log
    assert f"cancelled {job['id']} (timeout)" in log
    wait(
        ctx,
        lambda: emulator.admin.state()["finetuning_jobs"][0]["status"] == "canceled",
        30,
        "the job to reach canceled",
    )
    out.note(
        f"failed with PredibaseJobTimeout (timeout {DEADLINE_SECONDS:.0f} s; task instance "
        f"{ti['duration']:.0f} s from start to end); job {job['id']} canceled"
    )


@scenario(
    dags=("sys_mapped_finetunes",),
    emulators={"pb_mapped": STUCK},
    datasets={"pb_mapped": MAPPED_DATASETS},
)
def mapped(ctx: Context, out: ScenarioOutput) -> None:
    """Ten mapped fine-tunes waited on together by one triggerer."""
    dag, stack, emulator = "sys_mapped_finetunes", ctx.stack, ctx.emulators["pb_mapped"]
    if "triggerer_restart" in ctx.scenarios:  # so that one triggerer serves all ten
        assert ctx.restart_done.wait(timeout=600)
    run = ctx.trigger(dag, "mapped")
    # The jobs train until all ten task instances are seen deferred at the same time.
    wait(
        ctx,
        lambda: ctx.recorder.max_in_state(dag, run, "deferred") == 10,
        240,
        "all ten mapped fine-tunes to be deferred at once",
    )
    for job in emulator.admin.state()["finetuning_jobs"]:
        complete(emulator, job["id"])
    final = stack.wait_for_run(dag, run, timeout=180)
    report_tries(ctx, out, dag, run)
    assert final == "success", failure_detail(stack, dag, run)
    peak = ctx.recorder.max_in_state(dag, run, "deferred")
    out.note(f"at most {peak} of the 10 mapped task instances were deferred at once")
    assert peak == 10
    state = emulator.admin.state()
    assert state["counts"]["finetuning_jobs"] == 10
    triggerers = set()
    adapters = set()
    for index, dataset in enumerate(MAPPED_DATASETS):
        [job] = [j for j in state["finetuning_jobs"] if j["dataset"] == dataset]
        assert job["status"] == "completed"
        triggerers |= set(trigger_logs(stack, dag, run, "finetune", index))
        adapters.add(stack.xcom(dag, run, "finetune", map_index=index))
    assert adapters == {f"mapped-router/{v}" for v in range(1, 11)}
    assert len(triggerers) == 1, f"triggers ran in several triggerers: {triggerers}"
    out.note(f"ten jobs, ten adapters, one triggerer (job {triggerers.pop()})")
