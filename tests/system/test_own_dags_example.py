"""The example of docs/system_tests.md, run as it is printed there: the harness serving a
DAG file of your own (here the example predibase_wait_for_job) on a real scheduler,
triggerer and API server, against a local emulator."""

from pathlib import Path

import pytest

from airflow_predibase.client.models import FinetuningJobRequest, RepoRequest
from tests.system.harness import running_stack, wait_until

DAGS = [Path(__file__).resolve().parents[2] / "dags_examples" / "predibase_wait_for_job.py"]
DAG_ID = "predibase_wait_for_job"

pytestmark = pytest.mark.system


@pytest.fixture(scope="module")
def airflow():
    with running_stack(
        DAGS,  # a DAGs folder, or the files to serve
        emulators={"predibase_default": {"profile": "fast"}},  # one per connection ID
        env={"PREDIBASE_POLL_INTERVAL": "5"},  # your DAGs' own settings
    ) as (stack, emulators):
        stack.wait_for_dags([DAG_ID])
        yield stack, emulators["predibase_default"]


def test_the_sensor_waits_for_a_job_started_elsewhere(airflow):
    stack, emulator = airflow
    # Something outside Airflow starts a job (here the provider's own client).
    client = emulator.client()
    client.upload_dataset("tickets", b'{"prompt": "a", "completion": "b"}\n' * 10, "t.jsonl")
    wait_until(lambda: client.get_dataset("tickets").status.is_terminal, 30, "the dataset")
    client.create_repo(RepoRequest(name="router"))
    job = client.create_finetuning_job(
        FinetuningJobRequest(base_model="qwen3-8b", dataset="tickets", repo="router")
    )

    run = stack.trigger(DAG_ID, conf={"job_id": job.id})
    assert stack.wait_for_run(DAG_ID, run) == "success"
    assert stack.xcom(DAG_ID, run, "report") == "router/1"
    sensor = stack.task_instance(DAG_ID, run, "wait_for_job")
    if sensor["try_number"] > 1:  # never hide a retry
        print(f"retry used: wait_for_job try_number={sensor['try_number']}")
    links = stack.links(DAG_ID, run, "wait_for_job")["extra_links"]
    assert links == {"Predibase console": f"{emulator.url}/console/finetuning/jobs/{job.id}"}
    assert emulator.token not in stack.task_log(DAG_ID, run, "wait_for_job")
