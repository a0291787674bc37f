"""What the scenarios share: waiting, reading jobs and logs, reporting retries, acting.

Retries are never hidden: every task instance that needed more than one try is reported
("retry used: ..."), classified from the scheduler's own audit log. A retry explained by
the upstream fast-trigger race of Airflow 3.3.2 (the scheduler's "state mismatch" event)
passes, and says so; any other unexpected retry fails the scenario.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from airflow_predibase.emulator.config import PROFILES
from tests.system.harness import AirflowStack, EmulatorProcess, wait_until
from tests.system.scenarios.registry import Context, ScenarioOutput

ROOT = Path(__file__).resolve().parents[3]
RETRAINING = "predibase_retraining"
DATA = ROOT / "dags_examples" / "data" / "support_tickets.jsonl"
UPSTREAM_RACE = "apache/airflow #67287, #71580, #72716 (fast-trigger race in 3.3.2)"


def timing(name: str, **durations: float) -> dict[str, Any]:
    """The `fast` profile with some phases changed."""
    return {**PROFILES["fast"].model_dump(), "name": name, **durations}


#: A fine-tune trains for an hour: it moves on only when the scenario advances it.
STUCK = {"timing": timing("stuck", finetuning_training=3600)}


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


def trigger_logs(
    stack: AirflowStack, dag_id: str, run_id: str, task_id: str, map_index: int = -1
) -> dict[int, str]:
    """{triggerer job id: log text} of a task instance's trigger logs."""
    found: dict[int, str] = {}
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
) -> None:
    wait_until(
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
