"""The system-test scenarios, run concurrently on one running stack (a "campaign").

Each scenario is a function `(ctx, out)` that drives its own DAG run through the REST API,
intervenes like a user or an operator would (kill a process, mark, clear), and asserts.
A campaign starts one stack, runs the scenarios of its database in threads, checks the
secrets last, tears everything down, and keeps the outcome of each scenario; the tests in
test_system.py then report them one by one. Scenarios that touch shared things (the one
triggerer) coordinate through `ctx`.

Retries are never hidden: every task instance that needed more than one try is reported
("retry used: ..."), classified from the scheduler's own audit log. A retry explained by
the upstream fast-trigger race of Airflow 3.3.2 (the scheduler's "state mismatch" event)
passes, and says so; any other unexpected retry fails the scenario.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import json
import os
import signal
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from airflow_predibase.emulator.config import PROFILES
from tests.system.harness import (
    ABORT,
    AirflowStack,
    EmulatorProcess,
    PostgresUnavailable,
    StackSettings,
    StateRecorder,
    TriggerTableRecorder,
    find_secret,
    read_files,
    running_stack,
    secret_token,
    wait_until,
)

ROOT = Path(__file__).resolve().parents[2]
SYSTEM_DAGS = Path(__file__).parent / "dags"
DAG_SOURCES = [
    ROOT / "dags_examples" / "predibase_retraining.py",
    ROOT / "dags_examples" / "data",
    *sorted(SYSTEM_DAGS.glob("*.py")),
]
RETRAINING = "predibase_retraining"
DATA = ROOT / "dags_examples" / "data" / "support_tickets.jsonl"
#: A trigger's first poll waits min(poll_interval, 5 s): 5 s keeps triggers from firing
#: within Airflow 3.3.2's fast-trigger race window (see UPSTREAM_RACE).
POLL_INTERVAL = "5"
DEADLINE_SECONDS = 10.0  # as in system_finetune_scenarios
MAPPED_DATASETS = tuple(f"tickets-{i}" for i in range(10))  # as in system_finetune_scenarios
UPSTREAM_RACE = "apache/airflow #67287, #71580, #72716 (fast-trigger race in 3.3.2)"
TERMINAL_JOB = {"completed", "errored", "canceled"}


def timing(name: str, **durations: float) -> dict[str, Any]:
    """The `fast` profile with some phases changed."""
    return {**PROFILES["fast"].model_dump(), "name": name, **durations}


# -- what a scenario gets ---------------------------------------------------------------------


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
    db: str
    stack: AirflowStack
    emulators: dict[str, EmulatorProcess]
    token: str
    recorder: StateRecorder
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


# -- helpers ----------------------------------------------------------------------------------


def wait(ctx: Context, predicate: Callable[[], Any], timeout: float, what: str) -> Any:
    """`wait_until` that fails at once if an Airflow component died."""
    return wait_until(predicate, timeout, what, alive=ctx.stack.check_alive)


def new_jobs(
    state: dict[str, Any], kind: str, before: dict[str, Any] | None = None
) -> list[dict[str, Any]]:
    """Jobs of `kind` in an emulator snapshot that `before` did not have, oldest first.

    Each scenario has its own emulator, so its jobs are told apart without relying on the
    provider's idempotency marker (the behaviour under test).
    """
    seen = {job["id"] for job in (before or {}).get(kind, [])}
    fresh = [job for job in state[kind] if job["id"] not in seen]
    return sorted(fresh, key=lambda job: job["created_at"])


def trigger_logs(stack: AirflowStack, dag_id: str, run_id: str, task_id: str, map_index: int = -1):
    """{triggerer job id: log text} of a task instance's trigger logs."""
    found = {}
    for path in stack.task_log_files(dag_id, run_id, task_id, map_index):
        if ".trigger." in path.name:
            triggerer = int(path.name.rsplit(".trigger.", 1)[1].split(".")[0])
            found[triggerer] = found.get(triggerer, "") + path.read_text(errors="replace")
    return found


#: What our trigger's on_kill logs, whatever it decides.
ON_KILL_MARKERS = ("on kill", "leaving", "cannot read the task's state")


def on_kill_events(
    stack: AirflowStack, dag_id: str, run_id: str, task_id: str = "finetune"
) -> list[str]:
    """What our trigger's on_kill logged for this task instance (all tries)."""
    events = []
    for text in trigger_logs(stack, dag_id, run_id, task_id).values():
        for line in text.splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue
            event = str(record.get("event", ""))
            if any(marker in event for marker in ON_KILL_MARKERS):
                events.append(event)
    return events


def failure_detail(stack: AirflowStack, dag_id: str, run_id: str) -> str:
    """Task states and the end of each failed task's log, for an assertion message."""
    lines = [f"run {dag_id}/{run_id}: {stack.dag_run(dag_id, run_id)['state']}"]
    for ti in stack.task_instances(dag_id, run_id):
        lines.append(f"  {ti['task_id']}[{ti['map_index']}] {ti['state']} try {ti['try_number']}")
        if ti["state"] in ("failed", "up_for_retry", "upstream_failed"):
            text = stack.task_log(dag_id, run_id, ti["task_id"], ti["map_index"])
            lines.append("    " + text[-3000:].replace("\n", "\n    "))
    return "\n".join(lines)


def report_tries(
    ctx: Context,
    out: ScenarioOutput,
    dag_id: str,
    run_id: str,
    *,
    expected: dict[tuple[str, int], str] | None = None,
) -> None:
    """Report every task instance that needed more than one try, and why.

    `expected` maps (task_id, failed try) to the reason the scenario caused that retry
    itself (it killed the try). A failed try with the scheduler's "state mismatch" audit
    event is the upstream fast-trigger race. Anything else is unexplained: an assertion.
    """
    expected = expected or {}
    unexplained = []
    for ti in ctx.stack.task_instances(dag_id, run_id):
        if ti["try_number"] <= 1:
            continue
        task, index = ti["task_id"], ti["map_index"]
        label = task if index < 0 else f"{task}[{index}]"
        for attempt in ctx.stack.tries(dag_id, run_id, task, index):
            number = attempt["try_number"]
            if number >= ti["try_number"]:
                continue
            reason = expected.get((task, number))
            if reason is None:
                filters: dict[str, Any] = {
                    "dag_id": dag_id,
                    "run_id": run_id,
                    "task_id": task,
                    "try_number": number,
                    "event": "state mismatch",
                }
                if index >= 0:
                    filters["map_index"] = index
                if ctx.stack.event_logs(**filters):
                    reason = (
                        f"the scheduler failed try {number} with 'state mismatch' "
                        f"(executor reported success after the deferral): {UPSTREAM_RACE}"
                    )
            if reason is None:
                unexplained.append(f"{label} try {number} ({attempt['state']})")
                reason = "UNEXPLAINED (no state-mismatch event): see the try's log"
            out.retry(f"{label} try_number={ti['try_number']}: {reason}")
    assert not unexplained, (
        f"tries failed for reasons other than the upstream race: {unexplained}\n"
        + failure_detail(ctx.stack, dag_id, run_id)
    )


def wait_for_log(
    stack: AirflowStack,
    dag_id: str,
    run_id: str,
    task_id: str,
    text: str,
    timeout: float,
    *,
    map_index: int = -1,
    try_number: int = 0,
) -> str:
    return wait_until(
        lambda: text in stack.task_log(dag_id, run_id, task_id, map_index, try_number=try_number),
        timeout,
        f"{text!r} in the log of {dag_id}/{task_id}",
        alive=stack.check_alive,
    )


def kill_task_runner(ctx: Context, out: ScenarioOutput, ti: dict[str, Any], why: str) -> int:
    """``kill -9`` the process running this task-instance try (found by its proctitle)."""
    pids = wait(ctx, lambda: ctx.stack.task_runner_pids(ti["id"]), 30, f"the process of {ti['id']}")
    assert len(pids) == 1, f"several processes run TI {ti['id']}: {pids}"
    os.kill(pids[0], signal.SIGKILL)
    out.note(f"kill -9 {pids[0]} ('airflow worker -- {ti['id']}', try {ti['try_number']}): {why}")
    return int(pids[0])


def complete(emulator: EmulatorProcess, job_id: str) -> None:
    """Move a fine-tuning job on (queued -> training -> completed) until it completed."""
    for _ in range(3):
        if emulator.admin.advance("finetuning", job_id)["status"] == "completed":
            return
    raise AssertionError(f"job {job_id} did not complete when advanced")


def upload_tickets(emulator: EmulatorProcess, names: list[str]) -> None:
    """Connected `sft` datasets the scenario DAGs fine-tune on."""
    client = emulator.client()
    content = DATA.read_bytes()
    try:
        for name in names:
            client.upload_dataset(name, content, "tickets.jsonl")
        for name in names:
            wait_until(
                lambda n=name: client.get_dataset(n).status.is_terminal, 30, f"dataset {name}"
            )
    finally:
        client.close()


# -- 1. the full chain ------------------------------------------------------------------------

#: Tasks of predibase_retraining that wait in the triggerer, and the trigger they use.
CHAIN_DEFERRING = {
    "upload_training_data": "DatasetTrigger",
    "finetune": "FinetuningJobTrigger",
    "deploy": "DeploymentTrigger",
    "upload_eval_batch": "DatasetTrigger",
    "score": "BatchInferenceJobTrigger",
}


def scenario_chain(ctx: Context, out: ScenarioOutput) -> None:
    """predibase_retraining, triggered through REST, against its own emulator."""
    stack, emulator = ctx.stack, ctx.emulators["predibase_default"]
    try:
        run = ctx.trigger(RETRAINING, "chain")
        final = stack.wait_for_run(RETRAINING, run, timeout=360)
        state = emulator.admin.state()
    finally:
        ctx.chain_done.set()
    report_tries(ctx, out, RETRAINING, run)
    assert final == "success", failure_detail(stack, RETRAINING, run)

    # The DAG uploads TWO datasets (the training data and the eval batch); everything
    # else exactly once. The deployment is gone: the teardown deleted it.
    out.note(f"emulator resources after the run: {state['counts']}")
    assert state["counts"] == {
        "datasets": 2,
        "repos": 1,
        "finetuning_jobs": 1,
        "deployments": 0,
        "batch_jobs": 1,
    }
    [repo] = state["repos"]
    assert [v["version"] for v in repo["versions"]] == [1], repo
    [job] = state["finetuning_jobs"]
    [batch] = state["batch_jobs"]
    assert job["status"] == "completed"
    assert batch["status"] == "completed"
    eval_dataset = "support-tickets-eval-support-router-1"
    assert sorted(d["name"] for d in state["datasets"]) == ["support-tickets", eval_dataset]
    assert stack.xcom(RETRAINING, run, "finetune") == "support-router/1"
    assert stack.xcom(RETRAINING, run, "deploy")["action"] == "created"
    delete_log = stack.task_log(RETRAINING, run, "delete_deployment")
    assert "deleting deployment support-router-eval" in delete_log
    assert "deployment support-router-eval is gone" in delete_log
    out.note("one deployment (support-router-eval): created by deploy, deleted by teardown")

    # Deferred for real: seen in state `deferred`, and the triggerer ran our trigger class.
    for task, trigger_class in CHAIN_DEFERRING.items():
        states = ctx.recorder.states(RETRAINING, run, task)
        logs = trigger_logs(stack, RETRAINING, run, task)
        classpath = f"airflow_predibase.triggers.base.{trigger_class}"
        ran = sorted(t for t, text in logs.items() if f'"logger":"{classpath}"' in text)
        out.note(f"{task}: states {states}; {classpath} logged by triggerer job(s) {ran}")
        if task in ("finetune", "score"):
            assert "deferred" in states, f"{task} never seen deferred: {states}"
            assert ran, f"no trigger log of {classpath} for {task}: {sorted(logs)}"

    # Extra links, as the REST API returns them, point at the emulator's console.
    console = f"{emulator.url}/console"
    expected = {
        "upload_training_data": f"{console}/data/datasets/support-tickets",
        "finetune": f"{console}/finetuning/jobs/{job['id']}",
        "deploy": f"{console}/deployments/support-router-eval",
        "upload_eval_batch": f"{console}/data/datasets/{eval_dataset}",
        "score": f"{console}/batch-inference/jobs/{batch['id']}",
    }
    for task, url in expected.items():
        links = stack.links(RETRAINING, run, task)["extra_links"]
        assert links == {"Predibase console": url}, (task, links)
    out.note(f"extra links of {len(expected)} tasks point to {console}/...")


# -- 2. triggerer restart ---------------------------------------------------------------------


def scenario_triggerer_restart(ctx: Context, out: ScenarioOutput) -> None:
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


# -- 3. worker crash --------------------------------------------------------------------------


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


def scenario_worker_crash(ctx: Context, out: ScenarioOutput) -> None:
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


def scenario_create_dropped(ctx: Context, out: ScenarioOutput) -> None:
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


@contextlib.contextmanager
def polled_by_a_live_trigger(
    ctx: Context, dag: str, run: str, emulator: Any, status: str = ""
) -> Iterator[dict[str, Any]]:
    """Wait until the run's fine-tune is deferred and a live triggerer has polled its job
    (the log line starts with `status=<status>`); yield the job while the triggerer is
    held, so no restart scenario takes it away mid-action."""
    ctx.stack.wait_for_task_state(dag, run, "finetune", {"deferred"}, timeout=180)
    [job] = emulator.admin.state()["finetuning_jobs"]
    polled = f"fine-tuning job {job['id']}: status={status}"
    with ctx.triggerer_lock:
        wait(
            ctx,
            lambda: any(
                polled in t for t in trigger_logs(ctx.stack, dag, run, "finetune").values()
            ),
            120,
            "the trigger to poll the job",
        )
        yield job


# -- 4. kill and clear ------------------------------------------------------------------------


def scenario_mark_failed(ctx: Context, out: ScenarioOutput) -> None:
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
                if j["status"] in ("stopping", "canceled")
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
        if j["status"] not in TERMINAL_JOB
    ]
    assert not running, f"GPU jobs left running: {running}"
    out.note("trigger on_kill cancelled the job; no job left running")


def scenario_clear(ctx: Context, out: ScenarioOutput) -> None:
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


def scenario_clear_deferred(ctx: Context, out: ScenarioOutput) -> None:
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


# -- 5. deadline ------------------------------------------------------------------------------


def scenario_deadline(ctx: Context, out: ScenarioOutput) -> None:
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


# -- 6. faults in flight ----------------------------------------------------------------------

#: Scripted on the chain's emulator before a second run of predibase_retraining. Rules are
#: taken in order, each for `count` matching requests; every one must have been hit.
FAULTS: list[dict[str, Any]] = [
    # The fine-tune's status route: two 429s with Retry-After, then a 503 burst longer than
    # the client's 5 attempts (the trigger backs off and polls again), then slow answers:
    # one past the connection's 5 s timeout (a read timeout, retried), one under it.
    {"kind": "status", "status": 429, "retry_after": 1, "count": 2},
    {"kind": "status", "status": 503, "count": 5},
    {"kind": "slow", "delay": 7, "count": 1},
    {"kind": "slow", "delay": 2, "count": 1},
]
OTHER_FAULTS: list[dict[str, Any]] = [
    {
        "kind": "status",
        "status": 502,
        "method": "GET",
        "path": "/v2/batch-inference/jobs/*",
        "count": 2,
    },
    {
        "kind": "status",
        "status": 429,
        "retry_after": 1,
        "method": "GET",
        "path": "/v2/batch-inference/jobs/*",
        "count": 1,
    },
    {"kind": "slow", "delay": 2, "method": "GET", "path": "/v2/batch-inference/jobs/*", "count": 1},
    {"kind": "status", "status": 503, "method": "GET", "path": "/v2/deployments/*", "count": 3},
    {
        "kind": "status",
        "status": 429,
        "retry_after": 1,
        "method": "GET",
        "path": "/v2/datasets/*",
        "count": 2,
    },
    # Create POSTs: a 503 leaves the outcome unknown (the operator looks for its job, finds
    # none, creates it); a 429 is retried by the client.
    {"kind": "status", "status": 503, "method": "POST", "path": "/v2/finetuning/jobs"},
    {
        "kind": "status",
        "status": 429,
        "retry_after": 1,
        "method": "POST",
        "path": "/v2/batch-inference/jobs",
    },
]


def scenario_faults(ctx: Context, out: ScenarioOutput) -> None:
    """A second predibase_retraining run with faults scripted on every status route."""
    stack, emulator = ctx.stack, ctx.emulators["predibase_default"]
    assert ctx.chain_done.wait(timeout=600), "the clean chain never finished"
    snapshot = emulator.admin.state()
    before = snapshot["counts"]
    for rule in FAULTS:
        emulator.admin.add_fault(**{"method": "GET", "path": "/v2/finetuning/jobs/*", **rule})
    for rule in OTHER_FAULTS:
        emulator.admin.add_fault(**rule)
    out.note(f"scripted {len(FAULTS) + len(OTHER_FAULTS)} fault rules; emulator had {before}")
    run = ctx.trigger(RETRAINING, "faults")
    final = stack.wait_for_run(RETRAINING, run, timeout=420)
    state = emulator.admin.state()
    report_tries(ctx, out, RETRAINING, run)
    assert final == "success", failure_detail(stack, RETRAINING, run)
    left = state["faults"]["rules"]
    assert left == [], f"scripted faults never hit: {json.dumps(left)}"
    finetunes = new_jobs(state, "finetuning_jobs", snapshot)
    batches = new_jobs(state, "batch_jobs", snapshot)
    assert len(finetunes) == 1, finetunes
    assert len(batches) == 1, batches
    after = state["counts"]
    # The training data is reused (same content, same name); the eval batch is new.
    assert after == {
        "datasets": before["datasets"] + 1,
        "repos": 1,
        "finetuning_jobs": before["finetuning_jobs"] + 1,
        "deployments": 0,
        "batch_jobs": before["batch_jobs"] + 1,
    }, (before, after)
    finetune_log = stack.task_log(RETRAINING, run, "finetune")
    assert "create outcome unknown" in finetune_log
    assert "no job was created" in finetune_log
    polls = "\n".join(trigger_logs(stack, RETRAINING, run, "finetune").values())
    assert f"poll of {finetunes[0]['id']} failed" in polls, (
        "the 503 burst never reached the trigger"
    )
    out.note(
        f"every fault hit; chain succeeded; one fine-tune job ({finetunes[0]['id']}), one batch"
    )


# -- 7. concurrency ---------------------------------------------------------------------------


def scenario_mapped(ctx: Context, out: ScenarioOutput) -> None:
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


# -- 8. secrets -------------------------------------------------------------------------------


def check_secrets(ctx: Context, out: ScenarioOutput, triggers: TriggerTableRecorder) -> None:
    """The token is in no log, trigger row, XCom or rendered field of any run above."""
    stack, token = ctx.stack, ctx.token
    logs = read_files(stack.all_log_files())
    trigger_log_count = sum(".trigger." in name for name in logs)
    hits = find_secret(token, logs)
    assert not hits, f"the token is in the logs: {hits}"
    out.note(f"{len(logs)} log files ({trigger_log_count} trigger logs): no token")

    rows = list(triggers.rows.values())
    assert rows, "no trigger row was captured"
    classes = sorted({r["classpath"].rsplit(".", 1)[-1] for r in rows})
    texts = {f"trigger table {r['id']}": json.dumps(r, default=str) for r in rows}
    texts.update(
        {f"REST trigger {i}": json.dumps(t, default=str) for i, t in ctx.recorder.triggers.items()}
    )
    hits = find_secret(token, texts)
    assert not hits, f"the token is in the trigger table: {hits}"
    out.note(
        f"{len(rows)} trigger table rows ({', '.join(classes)}; kwargs raw and decrypted) and "
        f"{len(ctx.recorder.triggers)} triggers shown by REST: no token"
    )

    xcoms = stack.sql("SELECT dag_id, run_id, task_id, map_index, key, value FROM xcom")
    hits = find_secret(token, {"xcom": "\n".join(json.dumps(x, default=str) for x in xcoms)})
    assert not hits, f"the token is in XCom: {hits}"
    next_kwargs = stack.sql("SELECT next_kwargs FROM task_instance")
    hits = find_secret(token, {"ti": "\n".join(json.dumps(x, default=str) for x in next_kwargs)})
    assert not hits, f"the token is in task_instance.next_kwargs: {hits}"
    out.note(f"{len(xcoms)} XCom rows and every task's next_kwargs: no token")

    rendered = {}
    for dag_id, run_id in ctx.runs:
        for ti in stack.task_instances(dag_id, run_id):
            rendered[f"{dag_id}/{run_id}/{ti['task_id']}[{ti['map_index']}]"] = json.dumps(
                ti.get("rendered_fields")
            )
    assert any(v not in ("null", "{}") for v in rendered.values()), "no rendered fields at all"
    hits = find_secret(token, rendered)
    assert not hits, f"the token is in rendered template fields: {hits}"
    out.note(f"rendered fields of {len(rendered)} task instances (REST): no token")


# -- campaigns --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Scenario:
    func: Callable[[Context, ScenarioOutput], None]
    dags: tuple[str, ...]
    #: conn_id -> EmulatorProcess options, and the datasets to upload there first.
    emulators: dict[str, dict[str, Any]] = field(default_factory=dict)
    datasets: dict[str, tuple[str, ...]] = field(default_factory=dict)


CHAIN_EMULATOR = {"predibase_default": {"connection_extra": {"timeout": 5}}}
SCENARIOS: dict[str, Scenario] = {
    "chain": Scenario(scenario_chain, (RETRAINING,), CHAIN_EMULATOR),
    "triggerer_restart": Scenario(
        scenario_triggerer_restart,
        ("sys_triggerer_restart",),
        {"pb_restart": {"timing": timing("stuck", finetuning_training=3600)}},
        {"pb_restart": ("tickets",)},
    ),
    "worker_crash": Scenario(
        scenario_worker_crash,
        ("sys_worker_crash",),
        {"pb_worker_crash": {}},
        {"pb_worker_crash": ("tickets",)},
    ),
    "create_dropped": Scenario(
        scenario_create_dropped,
        ("sys_create_dropped",),
        {"pb_create_dropped": {}},
        {"pb_create_dropped": ("tickets",)},
    ),
    "mark_failed": Scenario(
        scenario_mark_failed,
        ("sys_mark_failed",),
        {"pb_mark_failed": {"timing": timing("stuck", finetuning_training=3600)}},
        {"pb_mark_failed": ("tickets",)},
    ),
    "clear": Scenario(scenario_clear, ("sys_clear",), {"pb_clear": {}}, {"pb_clear": ("tickets",)}),
    "clear_deferred": Scenario(
        scenario_clear_deferred,
        ("sys_clear_deferred",),
        {"pb_clear_deferred": {"timing": timing("stuck", finetuning_training=3600)}},
        {"pb_clear_deferred": ("tickets",)},
    ),
    "deadline": Scenario(
        scenario_deadline,
        ("sys_deadline",),
        {"pb_deadline": {"timing": timing("stuck", finetuning_training=3600)}},
        {"pb_deadline": ("tickets",)},
    ),
    "faults": Scenario(scenario_faults, (RETRAINING,), CHAIN_EMULATOR),
    "mapped": Scenario(
        scenario_mapped,
        ("sys_mapped_finetunes",),
        {"pb_mapped": {"timing": timing("stuck", finetuning_training=3600)}},
        {"pb_mapped": MAPPED_DATASETS},
    ),
}
#: `secrets` is not a thread: it runs after the others, on everything they left behind.
ALL = (*SCENARIOS, "secrets")
#: PostgreSQL runs a representative subset: a second full set would double the suite's time.
POSTGRES_SUBSET = ("chain", "triggerer_restart", "secrets")


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


def run_campaign(
    db: str,
    scenarios: tuple[str, ...],
    *,
    when_chain_done: Callable[[], None] | None = None,
) -> Campaign:
    """Start a stack on `db`, run `scenarios` concurrently, check secrets, tear down.

    `when_chain_done` is called (in a thread) once the clean chain run has finished: the
    busiest part of the campaign is then over, and another campaign can start.
    """
    campaign = Campaign(db, scenarios, started_at=time.monotonic())
    threaded = [s for s in scenarios if s != "secrets"]
    emulators: dict[str, dict[str, Any]] = {}
    datasets: dict[str, tuple[str, ...]] = {}
    dags: set[str] = set()
    for name in threaded:
        emulators.update(SCENARIOS[name].emulators)
        datasets.update(SCENARIOS[name].datasets)
        dags.update(SCENARIOS[name].dags)
    token = secret_token()
    started = campaign.started_at
    print(f"\n[system {db}] starting a stack for: {', '.join(scenarios)}", flush=True)
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
                ctx = Context(db, stack, emus, token, recorder, tuple(scenarios))
                if when_chain_done is not None:
                    threading.Thread(
                        target=lambda: ctx.chain_done.wait() and when_chain_done(),
                        name="when-chain-done",
                        daemon=True,
                    ).start()
                with concurrent.futures.ThreadPoolExecutor(len(threaded)) as pool:
                    futures = {
                        name: pool.submit(_run_one, ctx, name, SCENARIOS[name].func)
                        for name in threaded
                    }
                    try:
                        for name, future in futures.items():
                            campaign.outcomes[name] = future.result()
                    except BaseException:  # Ctrl-C: stop every scenario's waits now
                        ABORT.set()
                        raise
            if "secrets" in scenarios:
                campaign.outcomes["secrets"] = _run_one(
                    ctx, "secrets", lambda c, o: check_secrets(c, o, triggers)
                )
    except PostgresUnavailable as error:
        campaign.unavailable = f"could not start a private PostgreSQL cluster: {error}"
        print(f"[system {db}] SKIPPED: {campaign.unavailable}", flush=True)
    campaign.ended_at = time.monotonic()
    print(f"[system {db}] campaign took {campaign.wall_seconds:.0f} s", flush=True)
    return campaign


def _run_one(ctx: Context, name: str, func: Callable[[Context, ScenarioOutput], None]) -> Outcome:
    out = ScenarioOutput(ctx.db, name)
    started = time.monotonic()
    error: BaseException | None = None
    try:
        func(ctx, out)
    except BaseException as exc:  # reported by the scenario's test
        error = exc
        out.note(f"FAILED: {type(exc).__name__}: {str(exc)[:500]}")
        out.notes.append(traceback.format_exc())
    seconds = time.monotonic() - started
    out.note(f"{'passed' if error is None else 'failed'} in {seconds:.0f} s")
    return Outcome(name, error, seconds, out)
