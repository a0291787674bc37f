"""One job per installation, task instance and request, whatever the platform's answers.

The rules' building blocks first (clear cycle, markers), then the regressions of issue 10,
each driven through FinetuneOperator against the emulator over real HTTP, with the
emulator's scripted faults: a late commit, a list that lags or pages, a garbled or foreign
answer.
"""

from __future__ import annotations

import threading
import time
from types import SimpleNamespace
from typing import Any

import pytest

from airflow_predibase.exceptions import PredibaseJobCancelled
from airflow_predibase.operators._idempotency import (
    Marker,
    clear_cycle,
    marker_of,
    request_hash,
)
from airflow_predibase.operators.finetuning import FinetuneOperator
from tests.taskkit import (
    STUCK_PROFILE,
    DictStateStore,
    RecordingTI,
    make_context,
    needs_task_state_store,
    upload,
)
from tests.taskkit import finetune_operator as operator
from tests.taskkit import finetuning_jobs as jobs

# -- building blocks ----------------------------------------------------------------------


def context(max_tries: int, retries: int) -> dict[str, object]:
    return {"ti": SimpleNamespace(max_tries=max_tries, task=SimpleNamespace(retries=retries))}


def test_first_run_and_its_retries_are_cycle_zero():
    # A fresh task instance has max_tries == retries; retries do not change it.
    assert clear_cycle(context(max_tries=3, retries=3)) == 0


def test_a_clear_moves_to_a_new_cycle():
    # Cleared after try 2: Airflow sets max_tries = try_number + retries = 2 + 3.
    assert clear_cycle(context(max_tries=5, retries=3)) == 2


def test_marker_round_trips_and_ignores_other_task_instances():
    marker = Marker("0123456789abcdef", 2, 3, "0123456789ab")
    job = SimpleNamespace(description=f"weekly retrain {marker}")
    assert str(marker) == "[airflow:0123456789abcdef/c2/g3/r0123456789ab]"
    assert marker_of(job, "0123456789abcdef") == marker  # type: ignore[arg-type]
    assert marker_of(job, "fedcba9876543210") is None  # type: ignore[arg-type]


def test_markers_of_the_previous_version_still_read():
    job = SimpleNamespace(description="[airflow:0123456789abcdef/c0/g1]")
    assert marker_of(job, "0123456789abcdef") == Marker("0123456789abcdef", 0, 1, None)  # type: ignore[arg-type]


def test_the_request_hash_ignores_the_description_and_key_order():
    a = {"base_model": "m", "dataset": "d", "epochs": 2, "description": "x"}
    b = {"epochs": 2, "dataset": "d", "base_model": "m"}
    assert request_hash(a) == request_hash(b)
    assert request_hash(a) != request_hash({**b, "epochs": 3})


# -- through the operator and the emulator ------------------------------------------------

RUNNING = ("queued", "training")
ROWS = [
    {"prompt": "ticket: refund my duplicate payment", "completion": "billing"},
    {"prompt": "ticket: my parcel never arrived", "completion": "shipping"},
]


def defer(op: FinetuneOperator, ctx: dict[str, Any]) -> None:
    """Run `op` until it defers (its worker then dies: nothing resumes it)."""
    from airflow.providers.common.compat.sdk import TaskDeferred

    with pytest.raises(TaskDeferred):
        op.execute(ctx)


@pytest.fixture
def datasets(client: Any) -> None:
    upload(client, "tickets", ROWS)
    upload(client, "tickets_v2", ROWS[::-1])


@pytest.fixture
def installation(monkeypatch: pytest.MonkeyPatch) -> Any:
    """Switch the installation the operator runs in (its `predibase_installation_id`
    Variable, read here from the environment, as a secrets backend would serve it)."""

    def switch(name: str) -> None:
        monkeypatch.setenv("AIRFLOW_VAR_PREDIBASE_INSTALLATION_ID", name)

    switch("prod")
    return switch


# Defect 1: the marker identified the task instance, never the request.


def test_fix_the_dag_and_clear_starts_a_job_on_the_new_data(emulator, datasets, capsys):
    """A deferred task trains on the wrong dataset; the user fixes the DAG and clears it.
    The re-run must not re-attach to the running job on the wrong data."""
    emulator.admin.set_profile(STUCK_PROFILE)
    defer(operator(deferrable=True, dataset="tickets"), make_context())
    defer(operator(deferrable=True, dataset="tickets_v2"), make_context(clears=1))

    first, second = jobs(emulator)
    assert (first["dataset"], second["dataset"]) == ("tickets", "tickets_v2")
    assert first["status"] in RUNNING  # left as it is: never cancelled
    assert "request changed (fields: dataset)" in capsys.readouterr().out


def test_a_retry_of_the_same_request_reattaches_without_a_request_changed_warning(
    emulator, datasets, capsys
):
    emulator.admin.set_profile(STUCK_PROFILE)
    defer(operator(deferrable=True, dataset="tickets"), make_context())
    capsys.readouterr()
    defer(operator(deferrable=True, dataset="tickets"), make_context())
    out = capsys.readouterr().out
    assert "re-attaching to job" in out
    assert "request changed" not in out
    assert len(jobs(emulator)) == 1


def test_a_changed_request_does_not_reuse_a_completed_job_even_without_rerun_on_clear(
    emulator, datasets
):
    assert operator(rerun_on_clear=False).execute(make_context()) == "router/1"
    changed = operator(
        rerun_on_clear=False,
        base_model="llama-3-1-8b-instruct",
        hyperparameters={"epochs": 2},
    )
    assert changed.execute(make_context(clears=1)) == "router/2"
    assert [j["base_model"] for j in jobs(emulator)] == ["qwen3-8b", "llama-3-1-8b-instruct"]
    # The unchanged request, cleared again, still reuses its own completed job.
    assert operator(rerun_on_clear=False).execute(make_context(clears=2)) == "router/1"


def test_a_changed_hyperparameter_alone_starts_a_new_job(emulator, datasets, capsys):
    assert operator(rerun_on_clear=False).execute(make_context()) == "router/1"
    op = operator(rerun_on_clear=False, hyperparameters={"epochs": 2})
    assert op.execute(make_context(clears=1)) == "router/2"
    assert "request changed" in capsys.readouterr().out


def test_mapped_inputs_that_reorder_between_clears_never_swap_adapters(emulator, datasets):
    def run(map_index: int, dataset: str, clears: int) -> str:
        ctx = make_context(clears=clears)
        ctx["ti"].map_index = map_index
        result: str = operator(rerun_on_clear=False, dataset=dataset).execute(ctx)
        return result

    trained_on = {run(0, "tickets", 0): "tickets", run(1, "tickets_v2", 0): "tickets_v2"}
    # The upstream list came back in another order: map index 0 now holds tickets_v2.
    swapped = run(0, "tickets_v2", 1)
    assert trained_on.get(swapped) != "tickets"
    job = next(j for j in jobs(emulator) if f"router/{j.get('adapter_version')}" == swapped)
    assert job["dataset"] == "tickets_v2"


# Defect 2: another installation's job.


def test_two_installations_running_the_same_dag_never_share_a_job(emulator, datasets, installation):
    emulator.admin.set_profile(STUCK_PROFILE)
    defer(operator(deferrable=True), make_context(run_id="scheduled__2026-01-05"))
    [prod_job] = jobs(emulator)

    installation("staging")
    staging = operator()
    worker, outcome = start_blocking(
        staging, emulator, make_context(run_id="scheduled__2026-01-05")
    )
    staging.on_kill()  # e.g. a user marks staging's task failed
    worker.join(timeout=20)

    prod, ours = jobs(emulator)
    assert prod["id"] == prod_job["id"]
    assert prod["status"] in RUNNING  # staging neither used nor cancelled it
    assert ours["status"] in ("stopping", "canceled")
    assert isinstance(outcome.get("error"), PredibaseJobCancelled)


@needs_task_state_store
def test_a_changed_installation_id_still_finds_the_job_its_store_remembers(
    emulator, datasets, installation, capsys
):
    """The installation ID changed between two tries (a first-use race, a deleted
    Variable): the store is this task instance's own, so its job is still ours."""
    emulator.admin.set_profile(STUCK_PROFILE)
    store = DictStateStore()
    defer(operator(deferrable=True), make_context(store=store))
    installation("prod-after-a-race")
    defer(operator(deferrable=True), make_context(store=store))
    assert len(jobs(emulator)) == 1
    assert "installation ID (Variable predibase_installation_id) changed" in capsys.readouterr().out


# Defect 3: a create committed late was created twice.


def test_a_create_committed_late_is_found_not_sent_again(emulator, datasets, capsys):
    """The answer is lost and the job shows up 8.5 s later: the previous version looked
    for 7 s, concluded nothing was created, and trained twice."""
    emulator.admin.late_commit("/v2/finetuning/jobs", lag=8.5)
    assert operator().execute(make_context()) == "router/1"
    assert len(jobs(emulator)) == 1
    assert "found job" in capsys.readouterr().out


def test_a_second_lost_answer_does_not_fail_the_try_while_the_job_exists(emulator, datasets):
    # The first create never reaches the server; the second does, but its answer is lost
    # and the job commits late.
    emulator.admin.add_fault("drop", method="POST", path="/v2/finetuning/jobs")
    emulator.admin.late_commit("/v2/finetuning/jobs", lag=1.0)
    assert operator(lost_create_window=2.5).execute(make_context()) == "router/1"
    assert len(jobs(emulator)) == 1


# Defect 7: a stale job ID in the state store blocked the task for good.


@needs_task_state_store
def test_a_remembered_job_that_no_longer_exists_is_forgotten(emulator, datasets, capsys):
    store = DictStateStore()
    store.set("predibase_job_id", "0b0e5c6a-gone")
    assert operator().execute(make_context(store=store)) == "router/1"
    assert "no longer exists" in capsys.readouterr().out
    assert store.get("predibase_job_id") == jobs(emulator)[0]["id"]


# Defect 8: the state store was ignored when the list showed an older job; one page read.


@needs_task_state_store
def test_the_state_store_finds_the_job_a_lagging_list_misses(emulator, datasets):
    emulator.admin.set_profile(STUCK_PROFILE)
    store = DictStateStore()
    defer(operator(deferrable=True), make_context(store=store))
    [first] = jobs(emulator)
    emulator.admin.force("finetuning_job", first["id"], "errored", error="CUDA out of memory")
    # Try 2 starts generation 2, which the list will not show for an hour; its worker dies.
    emulator.admin.list_lag("/v2/finetuning/jobs", lag=3600)
    defer(operator(deferrable=True), make_context(store=store))
    # Try 3 sees only the errored generation 1 in the list: it must re-attach to 2.
    defer(operator(deferrable=True), make_context(store=store))
    assert [j["status"] for j in jobs(emulator)] in (["errored", s] for s in RUNNING)


def test_a_job_on_a_later_page_of_the_list_is_found(emulator, datasets):
    emulator.admin.set_profile(STUCK_PROFILE)
    for run in ("a", "b", "c"):
        defer(operator(deferrable=True), make_context(run_id=f"other_{run}"))
    defer(operator(deferrable=True), make_context(run_id="ours"))
    emulator.admin.set_page_size(2)
    defer(operator(deferrable=True), make_context(run_id="ours"))  # a retry, no state store
    assert len(jobs(emulator)) == 4


# Defect 9: a garbled 200 orphaned a running job.


def test_a_garbled_create_answer_is_an_unknown_outcome(emulator, datasets):
    emulator.admin.truncated("/v2/finetuning/jobs", method="POST")
    assert operator().execute(make_context()) == "router/1"
    assert len(jobs(emulator)) == 1


@pytest.mark.parametrize("fault", ["truncated", "html"])
def test_a_garbled_poll_answer_is_a_transient_poll_error(emulator, datasets, fault):
    if fault == "truncated":
        emulator.admin.truncated("/v2/finetuning/jobs/*", method="GET", count=2)
    else:
        emulator.admin.add_fault(
            "non_json", method="GET", path="/v2/finetuning/jobs/*", status=200, count=2
        )
    assert operator().execute(make_context()) == "router/1"
    assert jobs(emulator)[0]["status"] == "completed"


def test_a_garbled_poll_answer_does_not_end_a_deferred_wait(emulator, datasets):
    from tests.taskkit import run_deferred

    emulator.admin.truncated("/v2/finetuning/jobs/*", method="GET", count=2)
    assert run_deferred(operator(deferrable=True), make_context()) == "router/1"


# Defect 10: a poll answer about another job was accepted.


@pytest.mark.parametrize("deferrable", [False, True], ids=["blocking", "deferred"])
def test_an_answer_about_another_job_is_never_a_success(
    emulator, datasets, client, capsys, deferrable
):
    from tests.taskkit import run_deferred

    other_team = operator(repo="other-team").execute(make_context(run_id="theirs"))
    assert other_team == "other-team/1"
    [theirs] = jobs(emulator)
    emulator.admin.foreign("/v2/finetuning/jobs/*", other=theirs["id"], count=3)
    op = operator(deferrable=deferrable)
    result = run_deferred(op, make_context()) if deferrable else op.execute(make_context())
    assert result == "router/1"
    assert "the answer is about" in capsys.readouterr().out


# Defect 13: a worker SIGTERM that a retry will follow cancelled the job.


def start_blocking(
    op: FinetuneOperator, emulator: Any, ctx: dict[str, Any]
) -> tuple[threading.Thread, dict[str, Any]]:
    """Run `op` in blocking mode on a thread until it waits on a new job; the outcome lands
    in the returned dict under "error"."""
    before = len(jobs(emulator))
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            op.execute(ctx)
        except BaseException as error:
            outcome["error"] = error

    worker = threading.Thread(target=run)
    worker.start()
    deadline = time.monotonic() + 10
    while len(jobs(emulator)) == before or op._active_id is None:
        assert time.monotonic() < deadline, "the job was never created"
        time.sleep(0.05)
    return worker, outcome


def with_retries_left(ctx: dict[str, Any]) -> dict[str, Any]:
    ctx["ti"] = RecordingTI(try_number=1, max_tries=1, task=SimpleNamespace(retries=1))
    return ctx


def test_a_kill_that_a_retry_follows_leaves_the_job_for_the_retry(emulator, datasets):
    emulator.admin.set_profile(STUCK_PROFILE)
    store = DictStateStore()
    op = operator()
    worker, _ = start_blocking(op, emulator, with_retries_left(make_context(store=store)))
    op.on_kill()  # a pod rollout: SIGTERM, and the task will be retried
    [job] = jobs(emulator)
    assert job["status"] in RUNNING
    emulator.admin.force("finetuning_job", job["id"], "completed")  # lets the thread end
    worker.join(timeout=20)
    # The retry finds the job (completed meanwhile) and reuses it.
    assert operator().execute(with_retries_left(make_context(store=store))) == "router/1"
    assert len(jobs(emulator)) == 1


def test_a_task_a_user_marked_failed_cancels_its_job_even_with_retries_left(
    emulator, datasets, monkeypatch
):
    from airflow.sdk.execution_time.task_runner import RuntimeTaskInstance

    emulator.admin.set_profile(STUCK_PROFILE)
    op = operator()
    ctx = with_retries_left(make_context())
    worker, outcome = start_blocking(op, emulator, ctx)
    ti = ctx["ti"]
    monkeypatch.setattr(
        RuntimeTaskInstance,
        "get_task_states",
        staticmethod(lambda **_: {ti.run_id: {ti.task_id: "failed"}}),
    )
    op.on_kill()
    worker.join(timeout=20)
    assert jobs(emulator)[0]["status"] == "canceled"
    assert isinstance(outcome.get("error"), PredibaseJobCancelled)
