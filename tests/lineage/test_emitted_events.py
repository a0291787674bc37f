"""The OpenLineage provider really emits what the operators report: `airflow dags test` of
tests/lineage/dags/predibase_lineage.py against the emulator, with OpenLineage's file
transport, then the COMPLETE events read back. The fine-tuning task fails its first try
after its job was created; the event of the try that re-attached must still name that
job's adapter and the dataset it was trained on."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

pytest.importorskip("airflow.providers.openlineage")

DAGS = Path(__file__).parent / "dags"
TOKEN = "pb_LINEAGE_SECRET_51c0e2"
AIRFLOW = str(Path(sys.executable).with_name("airflow"))
ROWS = [
    {"prompt": "ticket: refund my duplicate payment", "completion": "billing"},
    {"prompt": "ticket: my parcel never arrived", "completion": "shipping"},
    {"prompt": "ticket: the app crashes on start", "completion": "technical"},
]


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """One `airflow dags test` run with the file transport; its events and the emulator."""
    from airflow_predibase.emulator.server import EmulatorServer

    home = tmp_path_factory.mktemp("airflow_home")
    work = home / "work"
    work.mkdir()
    (work / "tickets.jsonl").write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    events = home / "openlineage.jsonl"
    with EmulatorServer(profile="fast", token=TOKEN) as emulator:
        env = {
            **os.environ,
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(home / "logs"),
            "AIRFLOW_CONN_PREDIBASE_DEFAULT": emulator.connection_json(),
            "PREDIBASE_LINEAGE_WORKDIR": str(work),
            "AIRFLOW__OPENLINEAGE__NAMESPACE": "lineage-test",
            "AIRFLOW__OPENLINEAGE__TRANSPORT": json.dumps(
                {"type": "file", "log_file_path": str(events), "append": True}
            ),
        }
        for command in (["db", "migrate"], ["dags", "test", "predibase_lineage"]):
            done = subprocess.run(
                [AIRFLOW, *command], env=env, capture_output=True, text=True, timeout=600
            )
            output = done.stdout + done.stderr
            assert done.returncode == 0, output[-8000:]
        assert events.exists(), output[-8000:]
        lines = events.read_text().splitlines()
        yield {
            "emulator": emulator,
            "events": [json.loads(line) for line in lines if line.strip()],
            "raw": "\n".join(lines),
            "work": work,
        }


def complete(run: dict[str, Any], task_id: str) -> list[dict[str, Any]]:
    return [
        e
        for e in run["events"]
        if e["eventType"] == "COMPLETE" and e["job"]["name"] == f"predibase_lineage.{task_id}"
    ]


def names(datasets: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(d["namespace"], d["name"]) for d in datasets]


def namespace(emulator: Any) -> str:
    url = urlsplit(emulator.url)
    return f"predibase://{url.hostname}:{url.port}/{emulator.tenant}"


def test_upload_links_the_file_and_its_fingerprint_to_the_dataset(run: dict[str, Any]):
    [event] = complete(run, "upload")
    source = run["work"] / "tickets.jsonl"
    version = f"sha256:{hashlib.sha256(source.read_bytes()).hexdigest()[:16]}"
    [file] = event["inputs"]
    assert (file["namespace"], file["name"]) == ("file", str(source))
    assert file["facets"]["version"]["datasetVersion"] == version
    [dataset] = event["outputs"]
    assert (dataset["namespace"], dataset["name"]) == (
        namespace(run["emulator"]),
        "datasets/tickets",
    )
    assert dataset["facets"]["version"]["datasetVersion"] == version


def test_retry_that_reattached_links_the_dataset_to_the_first_tries_adapter(run: dict[str, Any]):
    [job] = run["emulator"].admin.state()["finetuning_jobs"]  # one job, for both tries
    attempts = [
        e
        for e in run["events"]
        if e["job"]["name"] == "predibase_lineage.finetune" and e["eventType"] == "FAIL"
    ]
    assert attempts, "the first try was meant to fail"
    [event] = complete(run, "finetune")
    assert event["run"]["facets"]["airflow"]["taskInstance"]["try_number"] == 2
    ns = namespace(run["emulator"])
    assert names(event["inputs"]) == [(ns, "datasets/tickets")]
    assert names(event["outputs"]) == [(ns, "adapters/router/1")]
    facet = event["run"]["facets"]["predibase_finetuning"]
    assert (facet["jobId"], facet["adapterId"]) == (job["id"], "router/1")
    assert facet["settings"]["epochs"] == 2
    assert facet["settings"]["rank"] == 8
    assert facet["settings"]["base_model"] == "qwen3-8b"


def test_deploy_links_the_adapter_to_the_deployment(run: dict[str, Any]):
    [event] = complete(run, "deploy")
    ns = namespace(run["emulator"])
    assert names(event["inputs"]) == [(ns, "adapters/router/1")]
    assert names(event["outputs"]) == [(ns, "deployments/router-eval")]


def test_score_links_adapter_and_scoring_input_to_the_results(run: dict[str, Any]):
    [event] = complete(run, "score")
    ns = namespace(run["emulator"])
    assert names(event["inputs"]) == [(ns, "datasets/eval"), (ns, "adapters/router/1")]
    assert names(event["outputs"]) == [("file", str(run["work"] / "results.jsonl"))]
    assert event["outputs"][0]["outputFacets"]["outputStatistics"]["rowCount"] == 6


def test_teardown_reports_the_deployment_dropped(run: dict[str, Any]):
    [event] = complete(run, "delete_deployment")
    [gone] = event["outputs"]
    assert gone["name"] == "deployments/router-eval"
    assert gone["facets"]["lifecycleStateChange"]["lifecycleStateChange"] == "DROP"


def test_no_event_carries_the_token(run: dict[str, Any]):
    assert TOKEN not in run["raw"]
