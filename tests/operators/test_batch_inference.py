"""BatchInferenceOperator against the emulator over real HTTP: both wait modes, row
reconciliation, results files, failures, timeouts, and never a second job per task instance."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from airflow.providers.common.compat.sdk import AirflowException

from airflow_predibase.client.models import BatchOutputRow
from airflow_predibase.exceptions import (
    PredibaseInvalidParameter,
    PredibaseJobFailed,
    PredibaseJobTimeout,
)
from airflow_predibase.operators.batch_inference import BatchInferenceOperator, reconcile
from tests.taskkit import (
    DictStateStore,
    make_context,
    needs_task_state_store,
    run_deferred,
)

IDS = ["t05", "t01", "t04", "t02", "t06", "t03"]


def batch_row(custom_id: str, model: str = "") -> dict[str, Any]:
    return {
        "custom_id": custom_id,
        "method": "POST",
        "url": "/v1/chat/completions",
        "body": {
            "model": model,
            "messages": [{"role": "user", "content": f"ticket {custom_id}: where is my parcel?"}],
            "max_tokens": 8,
        },
    }


#: The last row asks for an adapter that does not exist: it comes back with an error.
ROWS = [batch_row(i) for i in IDS[:-1]] + [batch_row(IDS[-1], model="ghost/1")]


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> str:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


@pytest.fixture
def input_file(tmp_path: Path) -> str:
    return write_jsonl(tmp_path / "batch.jsonl", ROWS)


@pytest.fixture
def dataset(client: Any, input_file: str) -> str:
    """A connected dataset of batch rows, through the real upload flow."""
    client.upload_dataset("batch-in", Path(input_file).read_bytes(), "batch.jsonl")
    deadline = time.monotonic() + 10
    while client.get_dataset("batch-in").status != "connected":
        assert time.monotonic() < deadline, "dataset never connected"
        time.sleep(0.05)
    return "batch-in"


def operator(**overrides: Any) -> BatchInferenceOperator:
    params: dict[str, Any] = {
        "task_id": "score",
        "base_model": "qwen3-8b",
        "dataset": "batch-in",
        "poll_interval": 0.05,
        "deferrable": False,
    }
    params.update(overrides)
    return BatchInferenceOperator(**params)


def jobs(emulator: Any) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = emulator.admin.state()["batch_jobs"]
    return found


# -- success ------------------------------------------------------------------------------


def test_blocking_run_accounts_for_every_row_and_writes_sorted_results(
    emulator: Any, dataset: str, tmp_path: Path
):
    results_path = tmp_path / "out" / "results.jsonl"
    context = make_context()
    result = operator(results_path=str(results_path)).execute(context)

    [job] = jobs(emulator)
    assert job["status"] == "completed"
    assert result == {
        "job_id": job["id"],
        "output": str(results_path),
        "results_path": str(results_path),
        "rows": 6,
        "succeeded": 5,
        "failed": 1,
    }
    lines = [json.loads(line) for line in results_path.read_text().splitlines()]
    assert [line["custom_id"] for line in lines] == sorted(IDS)
    by_id = {line["custom_id"]: line for line in lines}
    assert "ghost/1" in by_id[IDS[-1]]["error"]["message"]  # asked for a missing adapter
    assert by_id[IDS[0]]["response"]["body"]["choices"][0]["message"]["content"]
    assert context["ti"].xcoms["job_id"] == job["id"]
    assert (
        context["ti"].xcoms["predibase_console_url"].endswith(f"/batch-inference/jobs/{job['id']}")
    )


def test_deferred_run_checks_rows_against_the_input_file(
    emulator: Any, dataset: str, input_file: str, tmp_path: Path
):
    results_url = f"file://{tmp_path}/results.jsonl"
    op = operator(deferrable=True, input_file=input_file, results_path=results_url)
    result = run_deferred(op, make_context())

    assert (result["rows"], result["succeeded"], result["failed"]) == (6, 5, 1)
    assert result["output"] == results_url
    assert len((tmp_path / "results.jsonl").read_text().splitlines()) == 6


def test_output_is_the_platform_location_or_the_results_url(emulator: Any, dataset: str):
    with_output = operator(output="s3://bucket/scores/").execute(make_context(run_id="a"))
    assert with_output["output"] == "s3://bucket/scores/"
    assert with_output["results_path"] is None
    assert jobs(emulator)[0]["output"] == "s3://bucket/scores/"

    without = operator().execute(make_context(run_id="b"))
    assert without["output"] is None  # never the results download URL (a capability)


def test_templated_expected_rows_rendered_as_a_string_works(emulator: Any, dataset: str):
    op = operator(expected_rows="{{ params.rows }}")
    op.expected_rows = "6"  # as rendered
    assert op.execute(make_context())["rows"] == 6


# -- rows that do not add up --------------------------------------------------------------


def test_fewer_results_than_expected_rows_fails_and_a_retry_reuses_the_job(
    emulator: Any, dataset: str
):
    store = DictStateStore()
    with pytest.raises(PredibaseJobFailed, match="expected_rows is 7 but 6 distinct custom_ids"):
        operator(expected_rows=7).execute(make_context(store=store))
    assert operator(expected_rows=6).execute(make_context(store=store))["rows"] == 6
    assert len(jobs(emulator)) == 1


def test_input_rows_without_a_result_are_named(emulator: Any, dataset: str, tmp_path: Path):
    bigger = write_jsonl(tmp_path / "more.jsonl", [*ROWS, batch_row("t99")])
    with pytest.raises(PredibaseJobFailed, match=r"1 input row\(s\) have no result: 't99'"):
        operator(input_file=bigger).execute(make_context())


def row(custom_id: str, *, error: bool = False) -> BatchOutputRow:
    if error:
        return BatchOutputRow(custom_id=custom_id, error={"code": "x", "message": "boom"})
    return BatchOutputRow(custom_id=custom_id, response={"status_code": 200, "body": {}})


def test_duplicated_and_unknown_results_are_named():
    results = [row("a"), row("b"), row("b"), row("z"), *[row(f"d{i}") for i in range(7)]]
    results += [row(f"d{i}") for i in range(7)]
    expected = ["a", "b", "c", *[f"d{i}" for i in range(7)]]
    with pytest.raises(PredibaseJobFailed) as failure:
        reconcile(results, job_id="J", total_rows=11, expected_ids=expected)
    message = str(failure.value)
    assert (
        "8 custom_id(s) have several results: 'b', 'd0', 'd1', 'd2', 'd3', ... (3 more)" in message
    )
    assert "1 input row(s) have no result: 'c'" in message
    assert "1 result(s) match no input row: 'z'" in message
    assert "total_rows is 11 but 10 distinct custom_ids came back" in message


def test_complete_results_are_sorted_and_counted():
    ordered, counts = reconcile(
        [row("b"), row("c", error=True), row("a")], job_id="J", total_rows=3
    )
    assert [r.custom_id for r in ordered] == ["a", "b", "c"]
    assert (counts.rows, counts.succeeded, counts.failed) == (3, 2, 1)


# -- failures, timeouts -------------------------------------------------------------------


def test_failed_job_fails_with_the_reason_and_a_retry_starts_a_new_one(emulator: Any, dataset: str):
    store = DictStateStore()
    emulator.admin.fail_next("batch", error="GPU node lost")
    with pytest.raises(PredibaseJobFailed, match="GPU node lost") as failure:
        operator().execute(make_context(store=store))
    assert failure.value.remote_status == "errored"

    assert operator().execute(make_context(store=store))["rows"] == 6
    assert sorted(j["status"] for j in jobs(emulator)) == ["completed", "errored"]


def test_timeout_fails_and_cancels_the_job(emulator: Any, dataset: str):
    emulator.admin.set_profile("realistic")
    with pytest.raises(PredibaseJobTimeout, match="timed out"):
        operator(timeout=0.5).execute(make_context())
    assert jobs(emulator)[0]["status"] == "canceled"


def test_deferred_timeout_is_enforced_by_the_trigger_and_cancels(emulator: Any, dataset: str):
    emulator.admin.set_profile("realistic")
    with pytest.raises(PredibaseJobTimeout):
        run_deferred(operator(deferrable=True, timeout=1.5), make_context())
    assert jobs(emulator)[0]["status"] == "canceled"


def test_bad_expected_rows_fails_at_parse_time():
    with pytest.raises(ValueError, match="expected_rows must be an integer"):
        operator(expected_rows="many")


def test_unreadable_input_file_fails_before_the_job_starts(
    emulator: Any, dataset: str, tmp_path: Path
):
    with pytest.raises(AirflowException, match="cannot read input_file"):
        operator(input_file=str(tmp_path / "gone.jsonl")).execute(make_context())
    bad = write_jsonl(tmp_path / "dupes.jsonl", [batch_row("a"), batch_row("a")])
    with pytest.raises(PredibaseInvalidParameter, match="unique, non-empty custom_id"):
        operator(input_file=bad).execute(make_context())
    assert jobs(emulator) == []


# -- exactly one job per task instance ----------------------------------------------------


def test_lost_create_response_does_not_start_a_second_job(emulator: Any, dataset: str):
    emulator.admin.add_fault("drop_after", method="POST", path="/v2/batch-inference/jobs")
    assert operator().execute(make_context())["rows"] == 6
    assert len(jobs(emulator)) == 1


@pytest.mark.parametrize(
    "with_store",
    [pytest.param(True, marks=needs_task_state_store), False],
    ids=["airflow-3.3", "no-state-store"],
)
def test_retry_after_a_crash_reattaches_to_the_job(emulator: Any, dataset: str, with_store):
    from airflow.providers.common.compat.sdk import TaskDeferred

    store = DictStateStore() if with_store else None
    emulator.admin.add_fault("drop_after", method="POST", path="/v2/batch-inference/jobs")
    with pytest.raises(TaskDeferred):
        operator(deferrable=True).execute(make_context(store=store))  # the worker dies here
    [started] = jobs(emulator)

    result = operator().execute(make_context(store=store))  # the retry, in blocking mode
    assert result["job_id"] == started["id"]
    assert len(jobs(emulator)) == 1


@pytest.mark.parametrize(
    ("rerun_on_clear", "expected_jobs"),
    [(True, 2), (False, 1)],
)
def test_clear_after_success_reruns_or_reuses(
    emulator: Any, dataset: str, rerun_on_clear: bool, expected_jobs: int
):
    store = DictStateStore()
    first = operator(rerun_on_clear=rerun_on_clear).execute(make_context(store=store))
    second = operator(rerun_on_clear=rerun_on_clear).execute(make_context(store=store, clears=1))
    assert len(jobs(emulator)) == expected_jobs
    assert (first["job_id"] == second["job_id"]) is (not rerun_on_clear)


def test_a_changed_request_does_not_reuse_the_completed_job(emulator: Any, dataset: str):
    """Regression (issue 10, defect 1): with rerun_on_clear=False a clear reused the
    completed job although the request had changed."""
    first = operator(rerun_on_clear=False).execute(make_context())
    again = operator(rerun_on_clear=False).execute(make_context(clears=1))
    assert again["job_id"] == first["job_id"]
    moved = operator(rerun_on_clear=False, output="s3://bucket/v2/").execute(make_context(clears=2))
    assert moved["job_id"] != first["job_id"]
    assert [j.get("output") for j in jobs(emulator)] == [None, "s3://bucket/v2/"]
