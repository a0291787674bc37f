"""WaitForJobSensor: poke and deferrable modes, timeouts, soft_fail, failures."""

from __future__ import annotations

import time
from typing import Any

import pytest
from airflow.providers.common.compat.sdk import AirflowSensorTimeout, AirflowSkipException

from airflow_predibase.client.models import FinetuningJobRequest, RepoRequest
from airflow_predibase.exceptions import PredibaseWatchedJobFailed
from airflow_predibase.links import PredibaseConsoleLink
from airflow_predibase.sensors import WaitForJobSensor
from tests.taskkit import STUCK_PROFILE, make_context, run_deferred, upload


@pytest.fixture
def job_id(client: Any) -> str:
    upload(client, "rows", [{"prompt": "a", "completion": "b"}])
    client.create_repo(RepoRequest(name="r"))
    job = client.create_finetuning_job(
        FinetuningJobRequest(base_model="qwen3-8b", dataset="rows", repo="r")
    )
    return str(job.id)


def sensor(job_id: str, **overrides: Any) -> WaitForJobSensor:
    params: dict[str, Any] = {"task_id": "wait", "job_id": job_id, "poke_interval": 0.05}
    params.update(overrides)
    return WaitForJobSensor(**params)


def test_poke_mode_returns_the_finished_job(emulator: Any, job_id: str):
    job = sensor(job_id, deferrable=False, timeout=30).execute(make_context())
    assert job["id"] == job_id
    assert job["status"] == "completed"
    assert job["adapter_version"] == 1


def test_deferrable_mode_returns_the_finished_job(emulator: Any, job_id: str):
    job = run_deferred(sensor(job_id, deferrable=True, timeout=30), make_context())
    assert job["status"] == "completed"


def test_a_resumed_sensor_still_has_its_console_link(emulator: Any, job_id: str):
    """The worker resumes a fresh operator object; the link is read from it at the end."""
    fresh = sensor(job_id, deferrable=True, timeout=30)
    run_deferred(sensor(job_id, deferrable=True, timeout=30), make_context(), resume_on=fresh)
    link = PredibaseConsoleLink().get_link(fresh, ti_key=None)
    assert link.endswith(f"/console/finetuning/jobs/{job_id}")


def test_failed_job_fails_with_the_servers_reason(emulator: Any, client: Any):
    upload(client, "bad", [{"prompt": "only prompts here"}])
    client.create_repo(RepoRequest(name="r"))
    job = client.create_finetuning_job(
        FinetuningJobRequest(base_model="qwen3-8b", dataset="bad", repo="r")
    )
    with pytest.raises(PredibaseWatchedJobFailed, match="completion"):
        sensor(job.id, deferrable=False, timeout=30).execute(make_context())


@pytest.mark.parametrize("deferrable", [False, True])
def test_timeout_raises_sensor_timeout(emulator: Any, job_id: str, deferrable: bool):
    emulator.admin.set_profile(STUCK_PROFILE)
    op = sensor(job_id, deferrable=deferrable, timeout=0.4)
    run = run_deferred if deferrable else lambda o, c: o.execute(c)
    with pytest.raises(AirflowSensorTimeout):
        run(op, make_context())


def test_soft_fail_turns_a_timeout_into_a_skip(emulator: Any, job_id: str):
    emulator.admin.set_profile(STUCK_PROFILE)
    with pytest.raises(AirflowSkipException):
        sensor(job_id, deferrable=False, timeout=0.3, soft_fail=True).execute(make_context())


def test_sensor_never_cancels_the_job(emulator: Any, client: Any):
    # The job is made under the stuck profile: one made before it could finish in time.
    emulator.admin.set_profile(STUCK_PROFILE)
    upload(client, "rows", [{"prompt": "a", "completion": "b"}])
    client.create_repo(RepoRequest(name="r"))
    job_id = str(
        client.create_finetuning_job(
            FinetuningJobRequest(base_model="qwen3-8b", dataset="rows", repo="r")
        ).id
    )
    with pytest.raises(AirflowSensorTimeout):
        run_deferred(sensor(job_id, deferrable=True, timeout=0.3), make_context())
    assert client.get_finetuning_job(job_id).status == "training"


def test_unknown_job_type_fails_at_parse_time_with_the_choices():
    with pytest.raises(ValueError, match="finetuning_job, batch_inference_job"):
        sensor("x", job_type="training")


@pytest.fixture
def failed_job_id(client: Any) -> str:
    upload(client, "bad", [{"prompt": "only prompts here"}])
    client.create_repo(RepoRequest(name="r"))
    job = client.create_finetuning_job(
        FinetuningJobRequest(base_model="qwen3-8b", dataset="bad", repo="r")
    )
    return str(job.id)


@pytest.mark.parametrize("deferrable", [False, True])
def test_soft_fail_skips_a_failed_job_the_same_way_in_both_modes(
    emulator: Any, failed_job_id: str, deferrable: bool
):
    op = sensor(failed_job_id, deferrable=deferrable, timeout=30, soft_fail=True)
    run = run_deferred if deferrable else (lambda o, c: o.execute(c))
    with pytest.raises(AirflowSkipException):
        run(op, make_context())


def test_an_empty_job_id_fails_naming_the_fix(emulator: Any):
    from airflow.providers.common.compat.sdk import AirflowFailException

    with pytest.raises(AirflowFailException, match=r"job_id is empty.*conf"):
        sensor("", deferrable=False).execute(make_context())


# -- issue 10: every wait ends, clear errors -----------------------------------------------


@pytest.mark.parametrize("deferrable", [False, True])
def test_an_unknown_status_fails_the_sensor_after_the_bound(
    emulator: Any, job_id: str, deferrable: bool
):
    """Regression (defect 4): a status nobody knows kept the sensor poking until its
    7-day timeout; in poke mode each poke started the count again."""
    emulator.admin.set_profile(STUCK_PROFILE)
    emulator.admin.unknown_status(f"/v2/finetuning/jobs/{job_id}", count=1000)
    op = sensor(job_id, deferrable=deferrable, timeout=30)
    op.max_unknown_status = 0.3
    run = run_deferred if deferrable else (lambda o, c: o.execute(c))
    with pytest.raises(PredibaseWatchedJobFailed, match=r"'suspended'.*does not know"):
        run(op, make_context())


def test_a_refused_token_names_the_connection(emulator: Any, job_id: str, monkeypatch):
    """Regression (defect 11): a 401 did not say which connection holds the token."""
    import json

    from airflow.providers.common.compat.sdk import AirflowException

    conn = json.loads(emulator.connection_json())
    conn["password"] = "pb_wrong"
    monkeypatch.setenv("AIRFLOW_CONN_PREDIBASE_OTHER", json.dumps(conn))
    op = sensor(job_id, deferrable=False, timeout=30, predibase_conn_id="predibase_other")
    with pytest.raises(AirflowException, match=r"401.*connection 'predibase_other'"):
        op.execute(make_context())


def test_an_answer_about_another_job_is_never_a_success(emulator: Any, client: Any, job_id: str):
    """A misrouted answer (here about another, completed job) is a failed poke, not success."""
    deadline = time.monotonic() + 10
    while client.get_finetuning_job(job_id).status != "completed":
        assert time.monotonic() < deadline, "job never completed"
        time.sleep(0.05)
    op = sensor(job_id, deferrable=False)
    emulator.admin.foreign(f"/v2/finetuning/jobs/{job_id}")
    assert op.poke(make_context()) is False
    assert op.poke(make_context()) is True  # the next, true answer
