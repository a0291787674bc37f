"""What a user does to a fine-tune in the UI: mark it failed, clear it (done or deferred)."""

from __future__ import annotations

from airflow_predibase.client.models.status import FinetuningJobStatus
from tests.system.scenarios.helpers import (
    STUCK,
    complete,
    failure_detail,
    new_jobs,
    on_kill_events,
    polled_by_a_live_trigger,
    report_tries,
    trigger_logs,
    wait,
)
from tests.system.scenarios.registry import Context, ScenarioOutput, scenario


@scenario(
    dags=("sys_mark_failed",),
    emulators={"pb_mark_failed": STUCK},
    datasets={"pb_mark_failed": ("tickets",)},
)
def mark_failed(ctx: Context, out: ScenarioOutput) -> None:
    """Mark the deferred fine-tune failed via REST: on_kill cancels the remote job."""
    dag, stack, emulator = "sys_mark_failed", ctx.stack, ctx.emulators["pb_mark_failed"]
    run = ctx.trigger(dag, "markfailed")
    with polled_by_a_live_trigger(ctx, dag, run, emulator) as job:
        ti = stack.task_instance(dag, run, "finetune")
        assert ti["state"] == "deferred", ti
        stack.set_task_state(dag, run, "finetune", "failed")
        out.note(f"marked finetune failed via REST while deferred (job {job['id']} training)")
        cancelled = wait(
            ctx,
            lambda: [
                j
                for j in emulator.admin.state()["finetuning_jobs"]
                if (status := FinetuningJobStatus(j["status"])).is_winding_down
                or status.is_cancelled
            ],
            60,
            "the job to be cancelled",
        )
    out.note(f"job {job['id']} is {cancelled[0]['status']} after the mark")
    wait(
        ctx,
        lambda: emulator.admin.state()["finetuning_jobs"][0]["status"] == "canceled",
        30,
        "the job to reach canceled",
    )
    logs = "\n".join(trigger_logs(stack, dag, run, "finetune").values())
    assert f"cancelled fine-tuning job {job['id']} on kill" in logs
    assert stack.wait_for_run(dag, run, timeout=60) == "failed"
    assert stack.task_instance(dag, run, "finetune")["state"] == "failed"
    running = [
        j["id"]
        for j in emulator.admin.state()["finetuning_jobs"]
        if not FinetuningJobStatus(j["status"]).is_terminal
    ]
    assert not running, f"GPU jobs left running: {running}"
    out.note("trigger on_kill cancelled the job; no job left running")


@scenario(dags=("sys_clear",), emulators={"pb_clear": {}}, datasets={"pb_clear": ("tickets",)})
def clear(ctx: Context, out: ScenarioOutput) -> None:
    """Clear a succeeded fine-tune: a new job (rerun_on_clear=True, the documented default)."""
    dag, stack, emulator = "sys_clear", ctx.stack, ctx.emulators["pb_clear"]
    run = ctx.trigger(dag, "clear")
    final = stack.wait_for_run(dag, run, timeout=180)
    report_tries(ctx, out, dag, run)
    assert final == "success", failure_detail(stack, dag, run)
    first = stack.task_instance(dag, run, "finetune")["try_number"]
    assert stack.xcom(dag, run, "finetune") == "clear-router/1"
    stack.clear_tasks(dag, run, ["finetune"])
    out.note(f"cleared the succeeded finetune (try_number {first})")
    ti = wait(
        ctx,
        lambda: (
            t
            if (t := stack.task_instance(dag, run, "finetune"))["try_number"] > first
            and t["state"] in ("success", "failed")
            else None
        ),
        180,
        "the cleared task to run again",
    )
    assert stack.wait_for_run(dag, run, timeout=60) == "success", failure_detail(stack, dag, run)
    assert ti["state"] == "success", failure_detail(stack, dag, run)
    out.note(f"try_number {first} -> {ti['try_number']}: the clear, not a retry")
    jobs = new_jobs(emulator.admin.state(), "finetuning_jobs")
    assert len(jobs) == 2, jobs
    assert [j["status"] for j in jobs] == ["completed", "completed"]
    assert emulator.admin.state()["counts"]["finetuning_jobs"] == 2
    log = stack.task_log(dag, run, "finetune", try_number=ti["try_number"])
    assert f"task was cleared after job {jobs[0]['id']} finished: starting a new job" in log
    assert stack.xcom(dag, run, "finetune") == "clear-router/2"
    out.note(f"the clear started a second job ({jobs[1]['id']}): clear-router/2")


@scenario(
    dags=("sys_clear_deferred",),
    emulators={"pb_clear_deferred": STUCK},
    datasets={"pb_clear_deferred": ("tickets",)},
)
def clear_deferred(ctx: Context, out: ScenarioOutput) -> None:
    """Clear a fine-tune while it is deferred: the job keeps running, the new try
    re-attaches to it (documented in operators/_idempotency.py), one job in all.

    The trigger's on_kill runs on this user action too; it must see that the task
    instance is not finished (it is re-queued) and leave the job alone.
    """
    dag, stack, emulator = "sys_clear_deferred", ctx.stack, ctx.emulators["pb_clear_deferred"]
    run = ctx.trigger(dag, "cleardeferred")
    with polled_by_a_live_trigger(ctx, dag, run, emulator, status="training") as job:
        stack.clear_tasks(dag, run, ["finetune"])
        out.note(f"cleared finetune via REST while deferred (job {job['id']} training)")
        said = wait(
            ctx, lambda: on_kill_events(stack, dag, run), 60, "the trigger's on_kill to run"
        )
    for event in said:
        out.note(f"on_kill said: {event[:240]}")
    status = emulator.admin.state()["finetuning_jobs"][0]["status"]
    assert status == "training", (
        f"on_kill cancelled the job of a cleared task whose next try re-attaches to it (job "
        f"now {status}); the trigger logged: {said}"
    )
    ti = wait(
        ctx,
        lambda: (
            t
            if (t := stack.task_instance(dag, run, "finetune"))["try_number"] == 2
            and t["state"] == "deferred"
            else None
        ),
        180,
        "the new try to defer",
    )
    complete(emulator, job["id"])
    final = stack.wait_for_run(dag, run, timeout=180)
    assert final == "success", failure_detail(stack, dag, run)
    log = stack.task_log(dag, run, "finetune", try_number=ti["try_number"])
    assert f"re-attaching to job {job['id']}" in log, log[-3000:]
    assert emulator.admin.state()["counts"]["finetuning_jobs"] == 1
    out.note(f"try 2 re-attached to job {job['id']}; one job; task succeeded")
