"""EvaluateAdapterOperator scoring through batch inference, against the emulator over real
HTTP: the same scores as the serving API, one job per model and task instance (a retry
re-attaches), every row accounted for, and `method="auto"`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from airflow_predibase.client.errors import NotFoundError
from airflow_predibase.exceptions import (
    PredibaseInvalidParameter,
    PredibaseJobFailed,
    PredibaseJobTimeout,
)
from airflow_predibase.operators.evaluate import EvaluateAdapterOperator
from tests.operators.champion_kit import TICKETS, deploy, train, write_eval
from tests.taskkit import STUCK_PROFILE, DictStateStore, make_context


def evaluate(**overrides: Any) -> EvaluateAdapterOperator:
    params: dict[str, Any] = {
        "task_id": "evaluate",
        "deployment": "router",
        "poll_interval": 0.05,
    }
    params.update(overrides)
    return EvaluateAdapterOperator(**params)


def jobs(emulator: Any) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = emulator.admin.state()["batch_jobs"]
    return found


@pytest.fixture
def candidate(client: Any) -> str:
    adapter = train(client, "good", TICKETS)
    deploy()
    return adapter


def test_batch_scores_equal_serving_scores(emulator: Any, candidate: str, tmp_path: Path):
    data = str(write_eval(tmp_path / "eval.jsonl"))
    by_method = {}
    for method in ("serving", "batch"):
        rows = tmp_path / f"{method}.jsonl"
        context = make_context(run_id=method)
        result = evaluate(
            adapter=candidate, dataset=data, method=method, results_path=str(rows)
        ).execute(context)
        by_method[method] = (result, rows.read_text(), context["ti"].xcoms)
    serving, batch = by_method["serving"], by_method["batch"]
    strip = {"results_path": None}
    assert {**batch[0], **strip} == {**serving[0], **strip}
    assert batch[0]["counts"] == {"examples": 6, "candidate_correct": 6, "baseline_correct": 0}
    assert batch[1] == serving[1]  # every answer, row by row
    # One job per model; each ID is in XCom under its role.
    found = {job["id"]: job for job in jobs(emulator)}
    assert set(found) == {batch[2]["job_id_candidate"], batch[2]["job_id_baseline"]}
    assert all(job["status"] == "completed" for job in found.values())


def test_a_retry_after_the_jobs_were_created_reattaches(
    emulator: Any, candidate: str, tmp_path: Path
):
    data = str(write_eval(tmp_path / "eval.jsonl"))
    store = DictStateStore()
    # The first try dies after both jobs exist: its results download fails.
    emulator.admin.add_fault("status", method="GET", path="/__files__/*", status=404)
    first = make_context(store=store)
    with pytest.raises(NotFoundError):
        evaluate(adapter=candidate, dataset=data, method="batch").execute(first)
    started = jobs(emulator)
    assert len(started) == 2

    retry = make_context(store=store)
    result = evaluate(adapter=candidate, dataset=data, method="batch").execute(retry)
    assert result["passed"] is True
    assert len(jobs(emulator)) == 2  # no second job for either model
    for role in ("candidate", "baseline"):
        assert retry["ti"].xcoms[f"job_id_{role}"] == first["ti"].xcoms[f"job_id_{role}"]
        assert store.get(f"predibase_job_id_{role}") == retry["ti"].xcoms[f"job_id_{role}"]


def test_a_retry_without_a_state_store_finds_the_jobs_by_their_markers(
    emulator: Any, candidate: str, tmp_path: Path
):
    data = str(write_eval(tmp_path / "eval.jsonl"))
    emulator.admin.add_fault("status", method="GET", path="/__files__/*", status=404)
    with pytest.raises(NotFoundError):
        evaluate(adapter=candidate, dataset=data, method="batch").execute(make_context())
    evaluate(adapter=candidate, dataset=data, method="batch").execute(make_context())
    assert len(jobs(emulator)) == 2


def test_a_missing_output_row_fails_clearly(
    emulator: Any, client: Any, candidate: str, tmp_path: Path
):
    five = make_context(run_id="five")
    evaluate(
        adapter=candidate, dataset=str(write_eval(tmp_path / "five.jsonl", TICKETS[:5])),
        method="batch",
    ).execute(five)  # fmt: skip
    url = client.get_batch_inference_results(five["ti"].xcoms["job_id_candidate"]).url
    # The next results file served is that five-row one: the sixth example has no answer.
    emulator.admin.add_fault(
        "foreign", method="GET", path="/__files__/*", other=url.rstrip("/").rpartition("/")[2]
    )
    with pytest.raises(PredibaseJobFailed, match=r"1 input row\(s\) have no result: 'candidate-5'"):
        evaluate(
            adapter=candidate, dataset=str(write_eval(tmp_path / "six.jsonl")), method="batch"
        ).execute(make_context(run_id="six"))


def test_auto_picks_batch_above_the_threshold(emulator: Any, candidate: str, tmp_path: Path):
    data = str(write_eval(tmp_path / "eval.jsonl"))
    result = evaluate(adapter=candidate, dataset=data).execute(make_context(run_id="small"))
    assert result["passed"] is True
    assert jobs(emulator) == []  # 6 examples, default threshold 1,000: serving

    context = make_context(run_id="large")
    gate = EvaluateAdapterOperator(
        task_id="evaluate",
        adapter=candidate,
        deployment="router",
        dataset=data,
        method="auto",  # batch inference above batch_threshold examples, serving up to it
        batch_threshold=5,
        poll_interval=0.05,  # between status checks of the two batch jobs
    )
    result = gate.execute(context)
    assert result["candidate"]["scores"]["accuracy"] == 1.0
    assert {job["id"] for job in jobs(emulator)} == {
        context["ti"].xcoms["job_id_candidate"],
        context["ti"].xcoms["job_id_baseline"],
    }


def test_serving_above_its_limit_points_to_batch(emulator: Any, tmp_path: Path):
    rows = [{"prompt": f"p{i}", "completion": "x"} for i in range(1001)]
    data = tmp_path / "big.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(PredibaseInvalidParameter, match=r"at most 1000: use method='batch'"):
        evaluate(adapter="router/1", dataset=str(data), method="serving").execute(make_context())


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"method": "stream"}, r"method='stream' is not valid; choose one of: serving, batch"),
        ({"batch_threshold": 5000}, r"batch_threshold must be between 0 and 1000"),
        ({"batch_threshold": "10"}, r"batch_threshold must be an integer"),
    ],
)
def test_bad_method_parameters_name_the_field(overrides: dict[str, Any], expected: str):
    with pytest.raises(PredibaseInvalidParameter, match=expected):
        evaluate(adapter="router/1", dataset="eval.jsonl", **overrides)


def test_a_timeout_cancels_both_jobs(emulator: Any, candidate: str, tmp_path: Path):
    emulator.admin.set_profile(STUCK_PROFILE)  # the jobs never finish
    with pytest.raises(PredibaseJobTimeout):
        evaluate(
            adapter=candidate, dataset=str(write_eval(tmp_path / "eval.jsonl")), method="batch",
            timeout=2,
        ).execute(make_context())  # fmt: skip
    assert [job["status"] for job in jobs(emulator)] == ["canceled", "canceled"]
