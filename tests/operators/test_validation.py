"""Clear errors (issue 10, defects 11 and 13): every bad input fails before any remote call,
without retry, naming the field; a request the platform refuses for good is not retried.

Each test drives the operator against the emulator over real HTTP and checks, through the
emulator's state, that nothing was sent when the input was bad.
"""

from __future__ import annotations

import json
import math
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from airflow.providers.common.compat.sdk import AirflowFailException

from airflow_predibase.exceptions import PredibaseInvalidParameter, PredibaseRequestRejected
from airflow_predibase.operators._base import DEFAULT_TIMEOUTS
from airflow_predibase.operators._validation import check_finite, check_name
from airflow_predibase.operators.batch_inference import BatchInferenceOperator
from airflow_predibase.operators.datasets import CreateDatasetOperator
from airflow_predibase.operators.finetuning import FinetuneOperator
from tests.taskkit import make_context, upload

ROWS = [{"prompt": "a b c", "completion": "x"}, {"prompt": "d e f", "completion": "y"}]
BAD_NAMES = ["", "   ", " lead", "trail ", "a/b", "a\\b", "a?b", "a#b", "a%2Fb", "..", "a\nb"]


def finetune(**overrides: Any) -> FinetuneOperator:
    params: dict[str, Any] = {
        "task_id": "finetune",
        "base_model": "qwen3-8b",
        "dataset": "rows",
        "repo": "router",
        "poll_interval": 0.05,
        "deferrable": False,
    }
    params.update(overrides)
    return FinetuneOperator(**params)


def create_dataset(tmp_path: Path, **overrides: Any) -> CreateDatasetOperator:
    file = tmp_path / "rows.jsonl"
    file.write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    params: dict[str, Any] = {
        "task_id": "upload",
        "name": "rows",
        "file": str(file),
        "poll_interval": 0.05,
        "deferrable": False,
    }
    params.update(overrides)
    return CreateDatasetOperator(**params)


def nothing_created(emulator: Any) -> bool:
    state = emulator.admin.state()
    return not any(state[k] for k in ("datasets", "finetuning_jobs", "repos"))


# -- the validators ------------------------------------------------------------------------


@pytest.mark.parametrize("name", BAD_NAMES)
def test_a_name_the_platform_cannot_address_is_refused_naming_the_field(name: str):
    with pytest.raises(ValueError, match=r"^repo.*a name is non-empty text without '/'"):
        check_name("repo", name)


@pytest.mark.parametrize("name", ["router", "support-tickets_v2", "Qwen3.8B", "é-data"])
def test_ordinary_names_pass(name: str):
    assert check_name("repo", name) == name


def test_none_is_never_a_name_but_templates_and_xcomargs_wait_until_rendered():
    with pytest.raises(ValueError, match="repo is required"):
        check_name("repo", None)
    assert check_name("repo", "{{ params.repo }}") == "{{ params.repo }}"
    marker = object()  # an XComArg at parse time
    assert check_name("repo", marker) is marker


@pytest.mark.parametrize("value", [math.inf, -math.inf, math.nan])
def test_numbers_json_cannot_carry_are_refused_with_their_path(value: float):
    with pytest.raises(ValueError, match=r"hyperparameters\.sampling\[1\]"):
        check_finite("hyperparameters", {"epochs": 3, "sampling": [0.5, value]})
    check_finite("hyperparameters", {"learning_rate": 2e-4, "apply_chat_template": True})


# -- timeouts and poll intervals (parse time) ----------------------------------------------


@pytest.mark.parametrize("field", ["timeout", "poll_interval"])
@pytest.mark.parametrize("value", [math.inf, math.nan, -1, 0, "inf", "nan", True])
def test_a_wait_setting_that_is_not_a_finite_positive_number_fails_at_parse(field, value):
    """Regression: timeout=inf|nan passed, and in deferred mode crashed after the job was
    created (a trigger deadline JSON cannot carry), on every retry."""
    with pytest.raises(ValueError, match=field):
        finetune(**{field: value})


def test_every_operator_has_a_finite_default_timeout():
    """Regression: `timeout` defaulted to None, so any wait could last for ever."""
    assert finetune().timeout == DEFAULT_TIMEOUTS["finetuning_job"] == 24 * 3600
    op = BatchInferenceOperator(task_id="b", base_model="m", dataset="d")
    assert op.timeout == DEFAULT_TIMEOUTS["batch_inference_job"]
    assert create_dataset(Path("/tmp")).timeout == DEFAULT_TIMEOUTS["dataset"] == 3600
    assert all(math.isfinite(v) and v > 0 for v in DEFAULT_TIMEOUTS.values())
    assert finetune(timeout=timedelta(hours=2)).timeout == 7200
    assert finetune(timeout=None).timeout is None  # an explicit opt-out stays possible


# -- CreateDatasetOperator -----------------------------------------------------------------


@pytest.mark.parametrize("name", ["", "a/b", "a%2Fb"])
def test_a_bad_dataset_name_fails_when_the_dag_is_parsed(tmp_path: Path, name: str):
    with pytest.raises(ValueError, match="name"):
        create_dataset(tmp_path, name=name)


@pytest.mark.parametrize("rendered", ["", "  ", "a/b", None])
def test_a_dataset_name_that_renders_badly_fails_before_any_upload(
    emulator: Any, tmp_path: Path, rendered: str | None
):
    """Regression: a dataset named `a/b` was uploaded and then could not be polled."""
    op = create_dataset(tmp_path, name="{{ params.name }}")
    op.name = rendered  # as Airflow renders it
    with pytest.raises(PredibaseInvalidParameter, match=r"upload: name.*a name is non-empty"):
        op.execute(make_context(task_id="upload"))
    assert nothing_created(emulator)


# -- FinetuneOperator (its checks are applied in operators/finetuning.py) ------------------


@pytest.mark.parametrize("repo", ["", "a/b", None])
def test_a_bad_repo_fails_at_parse(repo: str | None):
    with pytest.raises(ValueError, match="repo"):
        finetune(repo=repo)


@pytest.mark.parametrize("rendered", ["", " ", "a/b", None])
def test_a_repo_that_renders_badly_fails_before_any_request(emulator: Any, rendered: Any):
    """Regression: repo='' sent GET /repos/ and failed with a retried validation error;
    repo=None failed with raw pydantic text."""
    op = finetune(repo="{{ params.repo }}")
    op.repo = rendered
    with pytest.raises(PredibaseInvalidParameter, match=r"repo.*a name is non-empty"):
        op.execute(make_context(task_id="finetune"))
    assert nothing_created(emulator)


@pytest.mark.parametrize("value", [math.inf, math.nan])
def test_a_non_finite_hyperparameter_fails_at_parse(value: float):
    """Regression: learning_rate=inf failed with a raw ValueError from the JSON encoder."""
    with pytest.raises(ValueError, match=r"hyperparameters\.learning_rate"):
        finetune(hyperparameters={"learning_rate": value})


def test_a_non_finite_hyperparameter_from_a_template_fails_before_any_request(emulator: Any):
    op = finetune(hyperparameters="{{ params.hp }}")
    op.hyperparameters = '{"learning_rate": Infinity}'  # JSON as a template renders it
    with pytest.raises(PredibaseInvalidParameter, match=r"hyperparameters\.learning_rate"):
        op.execute(make_context(task_id="finetune"))
    assert nothing_created(emulator)


# -- what the platform refuses for good is not retried -------------------------------------


def test_a_missing_dataset_fails_fast_naming_what_to_fix(emulator: Any):
    """Regression: the create's 404 (dataset not found) was retried by Airflow."""
    with pytest.raises(PredibaseRequestRejected, match=r"finetune: POST .*404.*does not exist"):
        finetune(dataset="no-such-dataset").execute(make_context(task_id="finetune"))
    assert emulator.admin.state()["finetuning_jobs"] == []


def test_a_missing_continue_from_version_fails_fast(emulator: Any, client: Any):
    upload(client, "rows", ROWS)
    op = finetune(hyperparameters={"continue_from_version": "router/7"})
    with pytest.raises(PredibaseRequestRejected, match="404"):
        op.execute(make_context(task_id="finetune"))
    assert emulator.admin.state()["finetuning_jobs"] == []


def test_a_rejected_token_names_the_connection(emulator: Any, monkeypatch: pytest.MonkeyPatch):
    """Regression: a 401 did not say which connection holds the bad token."""
    conn = json.loads(emulator.connection_json())
    conn["password"] = "pb_wrong"
    monkeypatch.setenv("AIRFLOW_CONN_PREDIBASE_STAGING", json.dumps(conn))
    op = finetune(predibase_conn_id="predibase_staging")
    with pytest.raises(PredibaseRequestRejected, match=r"401.*connection 'predibase_staging'"):
        op.execute(make_context(task_id="finetune"))


def test_rejections_are_never_retried():
    assert issubclass(PredibaseRequestRejected, AirflowFailException)
    assert issubclass(PredibaseInvalidParameter, AirflowFailException)


# -- BatchInferenceOperator's result (defect 13) -------------------------------------------


def test_the_batch_result_never_holds_the_results_download_url(emulator: Any, client: Any):
    """Regression: without results_path or output, the return value (an XCom anyone with
    DAG read access sees) held the results URL, which downloads the results by itself."""
    row = {
        "custom_id": "r1",
        "method": "POST",
        "url": "/v1/chat/completions",
        "body": {"model": "", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 4},
    }
    upload(client, "batch-in", [row])
    op = BatchInferenceOperator(
        task_id="score", base_model="qwen3-8b", dataset="batch-in", poll_interval=0.05
    )
    result = op.execute(make_context(task_id="score"))
    [job] = emulator.admin.state()["batch_jobs"]
    url = client.get_batch_inference_results(job["id"]).url
    assert url not in json.dumps(result)
    assert "http" not in str(result["output"])
    assert result["rows"] == 1
