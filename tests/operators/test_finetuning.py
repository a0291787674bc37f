"""FinetuneOperator against the emulator over real HTTP: both wait modes, every terminal
status, timeout, kill, bad parameters, and never a second job for one task instance."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from airflow_predibase.exceptions import (
    PredibaseInvalidParameter,
    PredibaseJobCancelled,
    PredibaseJobFailed,
    PredibaseJobTimeout,
)
from airflow_predibase.links import PredibaseConsoleLink
from airflow_predibase.operators.finetuning import FinetuneOperator
from tests.taskkit import (
    STUCK_PROFILE,
    DictStateStore,
    make_context,
    needs_task_state_store,
    run_deferred,
    upload,
)
from tests.taskkit import finetune_operator as operator
from tests.taskkit import finetuning_jobs as jobs

ROWS = [
    {"prompt": "ticket: refund my duplicate payment", "completion": "billing"},
    {"prompt": "ticket: my parcel never arrived", "completion": "shipping"},
    {"prompt": "ticket: the app crashes on start", "completion": "technical"},
]


@pytest.fixture
def dataset(client: Any) -> str:
    upload(client, "tickets", ROWS)
    return "tickets"


def test_blocking_run_trains_an_adapter_and_publishes_the_job(emulator: Any, dataset: str):
    context = make_context()
    adapter_id = operator().execute(context)

    assert adapter_id == "router/1"
    [job] = jobs(emulator)
    assert job["status"] == "completed"
    ti = context["ti"]
    assert ti.xcoms["job_id"] == job["id"]
    assert ti.xcoms["predibase_console_url"].endswith(f"/finetuning/jobs/{job['id']}")
    event = context["outlet_events"][next(iter(context["outlet_events"]))]
    assert event.extra["adapter_id"] == "router/1"


def test_deferred_run_round_trips_the_trigger_and_returns_the_adapter(emulator: Any, dataset):
    context = make_context()
    fresh = operator(deferrable=True)  # the worker resumes a fresh operator object
    result = run_deferred(operator(deferrable=True), context, resume_on=fresh)
    assert result == "router/1"
    [job] = jobs(emulator)
    # Pushed once per try: the resumed task still has it.
    assert context["ti"].pushed.count("predibase_console_url") == 1
    link = PredibaseConsoleLink().get_link(fresh, ti_key=None)
    assert link.endswith(f"/finetuning/jobs/{job['id']}")


def test_a_try_that_fails_before_its_job_exists_has_an_empty_link_and_no_xcom(
    emulator: Any, dataset: str
):
    op = operator(adapter_type="{{ params.kind }}")
    op.adapter_type = "qlora"  # as rendered
    context = make_context()
    with pytest.raises(PredibaseInvalidParameter):
        op.execute(context)
    # The link comes from the operator, so Airflow never looks up a missing XCom (which
    # it would log as an error after the real failure).
    assert PredibaseConsoleLink().get_link(op, ti_key=None) == ""
    assert "predibase_console_url" not in context["ti"].pushed


def test_second_version_goes_to_the_same_repository(emulator: Any, dataset: str):
    operator().execute(make_context(run_id="run_a"))
    assert operator().execute(make_context(run_id="run_b")) == "router/2"


@pytest.mark.parametrize(
    "with_store",
    [pytest.param(True, marks=needs_task_state_store), False],
    ids=["airflow-3.3", "no-state-store"],
)
def test_retry_after_crash_reattaches_to_the_running_job(emulator: Any, dataset, with_store):
    from airflow.providers.common.compat.sdk import TaskDeferred

    store = DictStateStore() if with_store else None
    first_try = operator(deferrable=True)
    with pytest.raises(TaskDeferred):
        first_try.execute(make_context(store=store))  # the worker dies here, never resumes
    [started] = jobs(emulator)

    second_try = operator()  # a retry, in blocking mode
    assert second_try.execute(make_context(store=store)) == "router/1"
    [job] = jobs(emulator)
    assert job["id"] == started["id"]


def test_lost_create_response_does_not_start_a_second_job(emulator: Any, dataset: str):
    emulator.admin.add_fault("drop_after", method="POST", path="/v2/finetuning/jobs")
    assert operator().execute(make_context()) == "router/1"
    assert len(jobs(emulator)) == 1


def test_retry_after_a_failed_job_starts_a_new_one(emulator: Any, dataset: str):
    store = DictStateStore()
    emulator.admin.fail_next("finetuning", error="CUDA out of memory")
    with pytest.raises(PredibaseJobFailed, match="CUDA out of memory") as failure:
        operator().execute(make_context(store=store))
    assert failure.value.remote_status == "errored"
    adapter_id = operator().execute(make_context(store=store))
    errored, completed = sorted(jobs(emulator), key=lambda j: j["status"], reverse=True)
    assert (errored["status"], completed["status"]) == ("errored", "completed")
    assert adapter_id == f"router/{completed['adapter_version']}"


def test_dataset_without_the_task_columns_fails_with_the_reason(emulator: Any, client: Any):
    upload(client, "no_completion", [{"prompt": "hello"}])
    with pytest.raises(PredibaseJobFailed, match="completion"):
        operator(dataset="no_completion").execute(make_context())


def test_clear_after_success_starts_a_new_job_by_default(emulator: Any, dataset: str):
    assert operator().execute(make_context()) == "router/1"
    assert operator().execute(make_context(clears=1)) == "router/2"
    assert len(jobs(emulator)) == 2


def test_clear_after_success_can_reuse_the_job(emulator: Any, dataset: str):
    assert operator(rerun_on_clear=False).execute(make_context()) == "router/1"
    assert operator(rerun_on_clear=False).execute(make_context(clears=1)) == "router/1"
    assert len(jobs(emulator)) == 1


def test_retry_after_success_reuses_the_job_instead_of_training_again(emulator, dataset):
    """The job completed but the try failed afterwards (e.g. the API server was away when
    the task reported success): the retry, in the same clear cycle, reuses the result."""
    store = DictStateStore()
    assert operator().execute(make_context(store=store)) == "router/1"
    assert operator().execute(make_context(store=store)) == "router/1"
    assert len(jobs(emulator)) == 1


def test_timeout_fails_and_cancels_the_job(emulator: Any, dataset: str):
    emulator.admin.set_profile(STUCK_PROFILE)
    with pytest.raises(PredibaseJobTimeout, match="timed out"):
        operator(timeout=0.5).execute(make_context())
    [job] = jobs(emulator)
    assert job["status"] in ("stopping", "canceled")


def test_deferred_timeout_is_enforced_by_the_trigger(emulator: Any, dataset: str):
    emulator.admin.set_profile(STUCK_PROFILE)
    with pytest.raises(PredibaseJobTimeout):
        run_deferred(operator(deferrable=True, timeout=1.5), make_context())
    assert jobs(emulator)[0]["status"] in ("stopping", "canceled")


def start_blocking(op: FinetuneOperator, emulator: Any) -> tuple[threading.Thread, dict[str, Any]]:
    """Run `op` in blocking mode on a thread until its job exists; the outcome lands in the
    returned dict under "error"."""
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            op.execute(make_context())
        except BaseException as error:
            outcome["error"] = error

    worker = threading.Thread(target=run)
    worker.start()
    deadline = time.monotonic() + 10
    while not jobs(emulator):
        assert time.monotonic() < deadline, "the job was never created"
        time.sleep(0.05)
    return worker, outcome


def test_job_cancelled_elsewhere_fails_without_retry(emulator: Any, client: Any, dataset):
    emulator.admin.set_profile(STUCK_PROFILE)
    worker, outcome = start_blocking(operator(), emulator)
    client.cancel_finetuning_job(jobs(emulator)[0]["id"])
    worker.join(timeout=20)
    assert isinstance(outcome.get("error"), PredibaseJobCancelled)


def test_on_kill_cancels_the_running_job(emulator: Any, dataset: str):
    emulator.admin.set_profile(STUCK_PROFILE)
    op = operator()
    worker, outcome = start_blocking(op, emulator)
    op.on_kill()
    worker.join(timeout=20)
    assert jobs(emulator)[0]["status"] == "canceled"
    assert isinstance(outcome.get("error"), PredibaseJobCancelled)


@pytest.mark.parametrize(
    ("field", "value", "choices"),
    [
        ("adapter_type", "qlora", "lora, turbo_lora, turbo"),
        ("task", "dpo", "sft, continued_pretraining, grpo"),
    ],
)
def test_bad_choice_fails_at_parse_time_naming_the_choices(field: str, value: str, choices):
    with pytest.raises(ValueError, match=rf"{field}='{value}'.*{choices}"):
        operator(**{field: value})


def test_unknown_hyperparameter_fails_at_parse_time_listing_valid_keys():
    with pytest.raises(ValueError, match=r"unknown keys \['epoch'\].*epochs"):
        operator(hyperparameters={"epoch": 3})


def test_bad_rendered_value_fails_before_any_request(emulator: Any, dataset: str):
    op = operator(adapter_type="{{ params.kind }}")
    op.adapter_type = "qlora"  # as rendered
    with pytest.raises(PredibaseInvalidParameter, match="adapter_type='qlora'"):
        op.execute(make_context())
    assert jobs(emulator) == []


def test_templated_hyperparameters_rendered_as_json_string_work(emulator: Any, dataset: str):
    op = operator(hyperparameters='{"epochs": "2", "learning_rate": 0.001}')
    assert op.execute(make_context()) == "router/1"
    # 3 rows fit one batch, so the job plans one step per epoch: 2 epochs reached the server.
    assert jobs(emulator)[0]["progress"]["total_steps"] == 2


def test_rerun_while_the_last_job_is_being_cancelled_starts_a_new_one(emulator, client, dataset):
    from airflow.providers.common.compat.sdk import TaskDeferred

    emulator.admin.set_profile({**STUCK_PROFILE, "finetuning_stopping": 3600.0})
    with pytest.raises(TaskDeferred):
        operator(deferrable=True).execute(make_context())
    [first] = jobs(emulator)
    client.cancel_finetuning_job(first["id"])  # e.g. the user marked the task failed
    with pytest.raises(TaskDeferred):
        operator(deferrable=True).execute(make_context())
    old, new = sorted(jobs(emulator), key=lambda j: j["id"] != first["id"])
    assert old["status"] == "stopping"
    assert new["status"] in ("queued", "training")


def test_request_the_server_rejects_fails_without_retry(emulator: Any, dataset: str):
    from airflow_predibase.exceptions import PredibaseRequestRejected

    with pytest.raises(PredibaseRequestRejected, match="base model"):
        operator(base_model="gpt-17").execute(make_context())


def test_scheduler_deferral_timeout_still_cancels_the_job(emulator: Any, dataset: str):
    """The scheduler's backstop fires before the trigger reports the deadline: the job is
    cancelled all the same, and the task fails as a timeout (not retried)."""
    from airflow.providers.common.compat.sdk import TaskDeferred

    emulator.admin.set_profile(STUCK_PROFILE)
    op = operator(deferrable=True, timeout=3600)
    context = make_context()
    with pytest.raises(TaskDeferred):
        op.execute(context)
    with pytest.raises(PredibaseJobTimeout, match="deferral timed out"):
        op.resume_execution("__fail__", {"error": "Trigger timeout"}, context)
    assert jobs(emulator)[0]["status"] in ("stopping", "canceled")
