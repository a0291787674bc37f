"""`wait_for_completion=False` on FinetuneOperator and BatchInferenceOperator, against the
emulator over real HTTP: the job is started (exactly once) and its ID returned at once, and
a WaitForJobSensor chained after it waits for it, in poke and deferrable modes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from airflow_predibase.operators.batch_inference import BatchInferenceOperator
from airflow_predibase.sensors import WaitForJobSensor
from tests.taskkit import DictStateStore, make_context, run_deferred, upload
from tests.taskkit import finetune_operator as finetune
from tests.taskkit import finetuning_jobs as jobs

ROWS = [
    {"prompt": "ticket: refund my duplicate payment", "completion": "billing"},
    {"prompt": "ticket: my parcel never arrived", "completion": "shipping"},
]


@pytest.fixture
def dataset(client: Any) -> str:
    upload(client, "tickets", ROWS)
    return "tickets"


def sensor_after(ti: Any, job_type: str, **overrides: Any) -> WaitForJobSensor:
    """The sensor a DAG chains after the operator, its job_id pulled from the `job_id` XCom
    (modelled: the rendered template's value)."""
    params: dict[str, Any] = {
        "task_id": "wait",
        "job_id": ti.xcoms["job_id"],
        "job_type": job_type,
        "poke_interval": 0.05,
        "timeout": 30,
    }
    return WaitForJobSensor(**{**params, **overrides})


@pytest.mark.parametrize("deferrable_sensor", [False, True], ids=["poke", "deferred"])
def test_finetune_without_waiting_then_the_sensor_waits(
    emulator: Any, dataset: str, deferrable_sensor: bool
):
    context = make_context()
    # deferrable=True would defer if the operator waited: returning proves it does not.
    op = finetune(wait_for_completion=False, deferrable=True)
    returned = op.execute(context)

    [job] = jobs(emulator)
    assert returned == job["id"]
    assert context["ti"].xcoms["job_id"] == job["id"]
    assert job["status"] in ("queued", "training"), "returned only once the job was over"
    assert op.outlets == [], "no adapter exists yet: nothing to announce"
    assert "training_summary" not in context["ti"].xcoms

    wait = sensor_after(context["ti"], "finetuning_job", deferrable=deferrable_sensor)
    if deferrable_sensor:
        finished = run_deferred(wait, make_context(task_id="wait"))
    else:
        finished = wait.execute(make_context(task_id="wait"))
    assert finished["id"] == job["id"]
    assert finished["status"] == "completed"


def test_finetune_without_waiting_is_still_idempotent(emulator: Any, dataset: str):
    store = DictStateStore()
    first = finetune(wait_for_completion=False).execute(make_context(store=store))
    retried = finetune(wait_for_completion=False).execute(make_context(store=store))
    assert retried == first
    assert len(jobs(emulator)) == 1


def test_the_default_still_waits_and_returns_the_adapter(emulator: Any, dataset: str):
    assert finetune().execute(make_context()) == "router/1"


def test_batch_without_waiting_then_the_sensor_waits(emulator: Any, client: Any, tmp_path: Path):
    rows = [
        {
            "custom_id": f"r{i}",
            "method": "POST",
            "url": "/v1/chat/completions",
            "body": {"model": "", "messages": [{"role": "user", "content": "hi"}]},
        }
        for i in range(3)
    ]
    upload(client, "batch-in", rows)
    context = make_context()
    op = BatchInferenceOperator(
        task_id="score",
        base_model="qwen3-8b",
        dataset="batch-in",
        results_path=str(tmp_path / "out.jsonl"),
        wait_for_completion=False,
        poll_interval=0.05,
        deferrable=True,
    )
    returned = op.execute(context)

    [job] = emulator.admin.state()["batch_jobs"]
    assert returned == job["id"] == context["ti"].xcoms["job_id"]
    assert job["status"] in ("queued", "running")
    assert not (tmp_path / "out.jsonl").exists(), "results are not read without waiting"

    finished = run_deferred(
        sensor_after(context["ti"], "batch_inference_job", deferrable=True),
        make_context(task_id="wait"),
    )
    assert finished["status"] == "completed"
    assert json.dumps(finished)  # the sensor's result is JSON for XCom


class _TI:
    """A task instance whose XComs the sensor's template reads (one upstream task)."""

    def __init__(self, task_id: str, xcoms: dict[str, Any]) -> None:
        self.task_id, self.xcoms = task_id, xcoms

    def xcom_pull(self, task_ids: str, key: str = "return_value") -> Any:
        assert task_ids == self.task_id
        return self.xcoms.get(key)


def test_the_documented_chain_runs(emulator: Any, client: Any):
    """docs/operators/batch_inference.md, as pasted (intervals shortened for the test)."""
    rows = [
        {
            "custom_id": "r1",
            "method": "POST",
            "url": "/v1/chat/completions",
            "body": {"model": "", "messages": [{"role": "user", "content": "hi"}]},
        }
    ]
    upload(client, "batch-in", rows)
    from airflow.sdk import DAG

    from airflow_predibase.operators import BatchInferenceOperator
    from airflow_predibase.sensors import WaitForJobSensor

    with DAG("score_later", schedule=None):
        start = BatchInferenceOperator(
            task_id="start_scoring",
            base_model="qwen3-8b",
            dataset="batch-in",
            wait_for_completion=False,
        )
        wait = WaitForJobSensor(
            task_id="wait_for_scoring",
            job_id="{{ ti.xcom_pull(task_ids='start_scoring', key='job_id') }}",
            job_type="batch_inference_job",
            deferrable=True,
        )
        start >> wait

    wait.poke_interval = 0.05
    context = make_context(task_id="start_scoring")
    job_id = start.execute(context)
    wait.render_template_fields({"ti": _TI("start_scoring", context["ti"].xcoms)})
    assert wait.job_id == job_id
    finished = run_deferred(wait, make_context(task_id="wait_for_scoring"))
    assert finished["status"] == "completed"
