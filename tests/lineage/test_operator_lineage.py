"""What each operator reports to OpenLineage on completion, run for real against the
emulator: blocking, resumed after a deferral on a fresh operator (as a worker resumes it),
and on a retry that re-attached to the job an earlier try started."""

from __future__ import annotations

import asyncio
import hashlib
import importlib
import json
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from airflow.providers.common.compat.sdk import TaskDeferred

from airflow_predibase.operators.batch_inference import BatchInferenceOperator
from airflow_predibase.operators.datasets import CreateDatasetOperator
from airflow_predibase.operators.deployments import DeleteDeploymentOperator, DeployOperator
from airflow_predibase.operators.finetuning import FinetuneOperator
from tests.taskkit import DictStateStore, make_context, needs_task_state_store, upload

pytest.importorskip("airflow.providers.openlineage")

ROWS = [
    {"prompt": "ticket: refund my duplicate payment", "completion": "billing"},
    {"prompt": "ticket: my parcel never arrived", "completion": "shipping"},
    {"prompt": "ticket: the app crashes on start", "completion": "technical"},
]
HYPERPARAMETERS = {"epochs": 2, "learning_rate": 0.0003, "rank": 8}


def lineage(operator: Any) -> dict[str, Any]:
    """The operator's lineage as the listener would emit it (JSON)."""
    from openlineage.client.serde import Serde

    result = operator.get_openlineage_facets_on_complete(None)
    return {
        "inputs": [Serde.to_dict(d) for d in result.inputs],
        "outputs": [Serde.to_dict(d) for d in result.outputs],
        "run_facets": {k: Serde.to_dict(v) for k, v in result.run_facets.items()},
    }


def names(datasets: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(d["namespace"], d["name"]) for d in datasets]


def namespace(emulator: Any) -> str:
    url = urlsplit(emulator.url)
    return f"predibase://{url.hostname}:{url.port}/{emulator.tenant}"


def resume_fresh(first: Any, second: Any, context: dict[str, Any]) -> Any:
    """`first` defers; the trigger runs to its event; `second`, a new operator object built
    from the same arguments, resumes, as a worker does after a deferral."""
    with pytest.raises(TaskDeferred) as deferred:
        first.execute(context)
    classpath, kwargs = deferred.value.trigger.serialize()
    module, _, name = classpath.rpartition(".")
    trigger = getattr(importlib.import_module(module), name)(**json.loads(json.dumps(kwargs)))

    async def first_event() -> Any:
        async for event in trigger.run():
            return event
        raise AssertionError("trigger ended without an event")

    event = asyncio.run(first_event())
    method = deferred.value.method_name
    return second.resume_execution(method, {"event": event.payload}, context)


@pytest.fixture
def training_file(tmp_path: Path) -> Path:
    path = tmp_path / "tickets.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    return path


@pytest.fixture
def tickets(client: Any) -> str:
    upload(client, "tickets", ROWS)
    return "tickets"


def finetune(**overrides: Any) -> FinetuneOperator:
    params: dict[str, Any] = {
        "task_id": "finetune",
        "base_model": "qwen3-8b",
        "dataset": "tickets",
        "repo": "router",
        "hyperparameters": HYPERPARAMETERS,
        "description": "weekly",
        "poll_interval": 0.1,
        "deferrable": False,
    }
    params.update(overrides)
    return FinetuneOperator(**params)


# -- CreateDatasetOperator ----------------------------------------------------------------


@pytest.mark.parametrize("deferred", [False, True], ids=["blocking", "deferred"])
def test_dataset_reports_the_file_and_its_fingerprint_to_the_dataset(
    emulator: Any, training_file: Path, deferred: bool
):
    def make() -> CreateDatasetOperator:
        return CreateDatasetOperator(
            task_id="upload",
            name="tickets",
            file=str(training_file),
            poll_interval=0.05,
            deferrable=deferred,
        )

    operator = make()
    if deferred:
        assert resume_fresh(make(), operator, make_context()) == "tickets"
    else:
        assert operator.execute(make_context()) == "tickets"

    found = lineage(operator)
    version = f"sha256:{hashlib.sha256(training_file.read_bytes()).hexdigest()[:16]}"
    [source] = found["inputs"]
    assert (source["namespace"], source["name"]) == ("file", str(training_file))
    assert source["facets"]["version"]["datasetVersion"] == version
    [dataset] = found["outputs"]
    assert (dataset["namespace"], dataset["name"]) == (namespace(emulator), "datasets/tickets")
    assert dataset["facets"]["version"]["datasetVersion"] == version
    assert [f["name"] for f in dataset["facets"]["schema"]["fields"]] == ["prompt", "completion"]
    assert dataset["outputFacets"]["outputStatistics"]["rowCount"] == 3
    assert emulator.token not in json.dumps(found)


def test_dataset_connected_from_a_source_names_the_bucket_without_credentials(emulator: Any):
    from airflow_predibase.lineage import location_name

    assert location_name("s3://aws_conn@bucket/data/tickets.jsonl") == (
        "s3://bucket",
        "data/tickets.jsonl",
    )
    assert location_name("gcs://bucket/a.csv") == ("gs://bucket", "a.csv")
    assert location_name("https://user:pw@host/a.csv?X-Sig=secret") == ("https://host", "/a.csv")
    assert location_name("file:///tmp/a.csv") == ("file", "/tmp/a.csv")


# -- FinetuneOperator ---------------------------------------------------------------------


def assert_training_lineage(found: dict[str, Any], emulator: Any, job_id: str) -> None:
    ns = namespace(emulator)
    assert names(found["inputs"]) == [(ns, "datasets/tickets")]
    [adapter] = found["outputs"]
    assert (adapter["namespace"], adapter["name"]) == (ns, "adapters/router/1")
    assert adapter["facets"]["version"]["datasetVersion"] == "1"
    facet = found["run_facets"]["predibase_finetuning"]
    assert facet["jobId"] == job_id
    assert facet["adapterId"] == "router/1"
    assert facet["settings"] == {
        "base_model": "qwen3-8b",
        "dataset": "tickets",
        "repo": "router",
        "adapter_type": "lora",
        "task": "sft",
        **HYPERPARAMETERS,
    }  # no description: it carries the idempotency marker


def test_finetune_reports_dataset_to_adapter_with_the_settings(emulator: Any, tickets: str):
    operator = finetune()
    operator.execute(make_context())
    [job] = emulator.admin.state()["finetuning_jobs"]
    assert_training_lineage(lineage(operator), emulator, job["id"])


def test_finetune_resumed_on_a_fresh_operator_reports_the_same(emulator: Any, tickets: str):
    operator = finetune(deferrable=True)
    assert resume_fresh(finetune(deferrable=True), operator, make_context()) == "router/1"
    [job] = emulator.admin.state()["finetuning_jobs"]
    assert_training_lineage(lineage(operator), emulator, job["id"])


@pytest.mark.parametrize(
    "with_store",
    [pytest.param(True, marks=needs_task_state_store), False],
    ids=["airflow-3.3", "no-state-store"],
)
def test_retry_that_reattached_reports_the_job_the_first_try_started(
    emulator: Any, tickets: str, with_store: bool
):
    store = DictStateStore() if with_store else None
    with pytest.raises(TaskDeferred):
        finetune(deferrable=True).execute(make_context(store=store))  # the worker dies here
    [started] = emulator.admin.state()["finetuning_jobs"]

    retry = finetune()
    assert retry.execute(make_context(store=store)) == "router/1"
    assert_training_lineage(lineage(retry), emulator, started["id"])
    assert len(emulator.admin.state()["finetuning_jobs"]) == 1


def test_continued_training_names_the_parent_adapter_as_an_input(emulator: Any, tickets: str):
    finetune().execute(make_context(run_id="first"))
    child = finetune(hyperparameters={"continue_from_version": "router/1"})
    assert child.execute(make_context(run_id="second")) == "router/2"
    found = lineage(child)
    assert [d["name"] for d in found["inputs"]] == ["datasets/tickets", "adapters/router/1"]
    assert [d["name"] for d in found["outputs"]] == ["adapters/router/2"]


def test_failed_task_reports_no_datasets(emulator: Any, tickets: str):
    from airflow_predibase.exceptions import PredibaseJobFailed

    emulator.admin.fail_next("finetuning", error="CUDA out of memory")
    operator = finetune()
    with pytest.raises(PredibaseJobFailed):
        operator.execute(make_context())
    assert lineage(operator) == {"inputs": [], "outputs": [], "run_facets": {}}


# -- DeployOperator, BatchInferenceOperator, DeleteDeploymentOperator ---------------------


def test_deploy_score_delete_link_adapter_and_scoring_input_to_the_results(
    emulator: Any, client: Any, tickets: str, tmp_path: Path
):
    finetune().execute(make_context(run_id="train"))
    ns = namespace(emulator)

    def deploy() -> DeployOperator:
        return DeployOperator(
            task_id="deploy",
            name="router-eval",
            base_model="qwen3-8b",
            accelerator="a10_24gb",
            preloaded_adapters=["router/1"],
            poll_interval=0.05,
            deferrable=True,
        )

    deployer = deploy()
    resume_fresh(deploy(), deployer, make_context())
    found = lineage(deployer)
    assert names(found["inputs"]) == [(ns, "adapters/router/1")]
    assert names(found["outputs"]) == [(ns, "deployments/router-eval")]
    assert found["run_facets"]["predibase_deployment"]["action"] == "created"

    rows = [
        {
            "custom_id": f"{who}-{n}",
            "body": {"model": model, "messages": [{"role": "user", "content": f"ticket {n}"}]},
        }
        for n in range(3)
        for who, model in (("adapter", "router/1"), ("base", ""))
    ]
    upload(client, "eval", rows)
    results = tmp_path / "results.jsonl"
    scorer = BatchInferenceOperator(
        task_id="score",
        base_model="qwen3-8b",
        dataset="eval",
        results_path=str(results),
        poll_interval=0.05,
        deferrable=False,
    )
    outcome = scorer.execute(make_context())
    found = lineage(scorer)
    assert names(found["inputs"]) == [(ns, "datasets/eval"), (ns, "adapters/router/1")]
    [output] = found["outputs"]
    assert (output["namespace"], output["name"]) == ("file", str(results))
    assert output["outputFacets"]["outputStatistics"]["rowCount"] == 6
    facet = found["run_facets"]["predibase_batchInference"]
    assert facet["jobId"] == outcome["job_id"]
    assert (facet["baseModel"], facet["models"]) == ("qwen3-8b", ["router/1"])
    assert (facet["rows"], facet["succeeded"], facet["failed"]) == (6, 6, 0)

    deleter = DeleteDeploymentOperator(task_id="delete", name="router-eval", poll_interval=0.05)
    deleter.execute(make_context())
    [gone] = lineage(deleter)["outputs"]
    assert (gone["namespace"], gone["name"]) == (ns, "deployments/router-eval")
    assert gone["facets"]["lifecycleStateChange"]["lifecycleStateChange"] == "DROP"


def test_batch_without_a_results_path_names_the_job_results_not_the_download_url(
    emulator: Any, client: Any
):
    upload(
        client,
        "eval",
        [{"custom_id": "a", "body": {"messages": [{"role": "user", "content": "hi"}]}}],
    )
    scorer = BatchInferenceOperator(
        task_id="score", base_model="qwen3-8b", dataset="eval", poll_interval=0.05
    )
    outcome = scorer.execute(make_context())
    [output] = lineage(scorer)["outputs"]
    assert (output["namespace"], output["name"]) == (
        namespace(emulator),
        f"batch_inference_jobs/{outcome['job_id']}/results",
    )


def test_delete_of_a_missing_deployment_reports_nothing(emulator: Any):
    deleter = DeleteDeploymentOperator(task_id="delete", name="never-there")
    deleter.execute(make_context())
    assert lineage(deleter) == {"inputs": [], "outputs": [], "run_facets": {}}
