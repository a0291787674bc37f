"""The resource-kind registry: every kind is complete, every reader uses it, and its client
calls reach the real resource over HTTP with the sync and the async client alike."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import pytest

from airflow_predibase.client.models import (
    BatchInferenceJobRequest,
    DeploymentRequest,
    FinetuningJobRequest,
    RepoRequest,
)
from airflow_predibase.hooks.predibase import PredibaseHook
from airflow_predibase.kinds import (
    BATCH_INFERENCE_JOB,
    DATASET,
    DEPLOYMENT,
    FINETUNING_JOB,
    KINDS,
    ResourceKind,
    resource_kind,
)
from airflow_predibase.links import console_url
from airflow_predibase.operators import (
    BatchInferenceOperator,
    CreateDatasetOperator,
    DeleteDeploymentOperator,
    DeployOperator,
    FinetuneOperator,
)
from airflow_predibase.sensors.jobs import WaitForJobSensor
from airflow_predibase.triggers.base import PredibasePollingTrigger, trigger_for
from tests.taskkit import STUCK_PROFILE, upload

PACKAGE = Path(__file__).resolve().parents[1] / "airflow_predibase"
ROWS = [{"prompt": "a b c", "completion": "x"}, {"prompt": "d e f", "completion": "y"}]


@pytest.mark.parametrize("kind", KINDS.values(), ids=str)
def test_every_kind_has_its_own_trigger(kind: ResourceKind) -> None:
    trigger_class = trigger_for(kind)
    assert issubclass(trigger_class, PredibasePollingTrigger)
    assert trigger_class.kind is kind
    # Importable by the classpath it serializes, as the triggerer re-creates it.
    classpath, _ = trigger_class(resource_id="x").serialize()
    assert classpath == f"airflow_predibase.triggers.base.{trigger_class.__name__}"


def test_trigger_classes_and_kinds_are_one_to_one() -> None:
    classes = {trigger_for(kind) for kind in KINDS.values()}
    assert len(classes) == len(KINDS)


@pytest.mark.parametrize(
    ("operator", "kind"),
    [
        (FinetuneOperator, FINETUNING_JOB),
        (BatchInferenceOperator, BATCH_INFERENCE_JOB),
        (DeployOperator, DEPLOYMENT),
        (DeleteDeploymentOperator, DEPLOYMENT),
        (CreateDatasetOperator, DATASET),
    ],
)
def test_each_operator_names_its_kind_from_the_registry(operator: Any, kind: ResourceKind) -> None:
    assert operator.kind is kind


@pytest.mark.parametrize("name", KINDS)
def test_the_sensor_resolves_job_type_through_the_registry(name: str) -> None:
    sensor = WaitForJobSensor(task_id="s", job_id="x", job_type=name)
    assert sensor.kind is KINDS[name]


def test_an_unknown_kind_names_the_field_and_the_choices() -> None:
    with pytest.raises(ValueError, match=r"job_type='training_job' is not valid.*finetuning_job"):
        resource_kind("training_job")
    with pytest.raises(ValueError, match=r"job_type='nope'.*deployment, dataset"):
        WaitForJobSensor(task_id="s", job_id="x", job_type="nope")


def test_console_url_follows_the_kind_and_quotes_the_id() -> None:
    assert console_url("https://c", FINETUNING_JOB, "j 1") == "https://c/finetuning/jobs/j%201"
    assert console_url("https://c", DATASET, "a/b") == "https://c/data/datasets/a/b"


def test_only_cancellable_kinds_have_a_cancel() -> None:
    assert {k.name for k in KINDS.values() if k.cancel} == {"finetuning_job", "batch_inference_job"}


def _computed_getattrs(path: Path) -> list[str]:
    """A method or class looked up by a name string and called:
    ``getattr(x, name)(...)``, or ``f = getattr(x, name)`` followed by ``f(...)``.
    (Reading a data attribute by name, such as each template field, is fine.)"""
    tree = ast.parse(path.read_text())
    called = {
        n.func.id
        for n in ast.walk(tree)
        if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)
    }
    found = []
    for node in ast.walk(tree):
        lookup = None
        if isinstance(node, ast.Call) and _is_computed_getattr(node.func):
            lookup = node.func
        elif (
            isinstance(node, ast.Assign)
            and _is_computed_getattr(node.value)
            and any(isinstance(t, ast.Name) and t.id in called for t in node.targets)
        ):
            lookup = node.value
        if lookup is not None:
            found.append((lookup.lineno, f"{path.relative_to(PACKAGE.parent)}:{lookup.lineno}"))
    return [where for _, where in sorted(found)]


def _is_computed_getattr(node: ast.AST) -> bool:
    return (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id == "getattr"
        and len(node.args) >= 2
        and not isinstance(node.args[1], ast.Constant)
    )


def test_no_lookup_by_name_string_where_kinds_are_read() -> None:
    readers = [
        *(PACKAGE / "operators").glob("*.py"),
        *(PACKAGE / "sensors").glob("*.py"),
        *(PACKAGE / "triggers").glob("*.py"),
        *(PACKAGE / "waiting").glob("*.py"),
        PACKAGE / "links.py",
        PACKAGE / "deferral.py",
    ]
    assert [hit for path in readers for hit in _computed_getattrs(path)] == []


def test_the_name_lookup_check_can_fail() -> None:
    module = PACKAGE / "_probe_for_test.py"
    try:
        module.write_text(
            "def f(c, k):\n"
            "    return getattr(c, k.get_method)(1)\n"
            "def g(c, k):\n"
            "    fetch = getattr(c, k.get_method)\n"
            "    return fetch(1)\n"
            "def h(r, names):\n"
            "    return [getattr(r, n) for n in names]\n"
        )
        assert _computed_getattrs(module) == [
            "airflow_predibase/_probe_for_test.py:2",
            "airflow_predibase/_probe_for_test.py:4",
        ]
    finally:
        module.unlink()


def _make_one_of_each(client: Any) -> dict[str, str]:
    """A real resource of every kind in the emulator; the IDs by kind name."""
    upload(client, "rows", ROWS)
    client.create_repo(RepoRequest(name="r"))
    job = client.create_finetuning_job(
        FinetuningJobRequest(base_model="qwen3-8b", dataset="rows", repo="r")
    )
    client.create_deployment(DeploymentRequest(name="d", base_model="qwen3-8b"))
    batch = client.create_batch_inference_job(
        BatchInferenceJobRequest(base_model="qwen3-8b", dataset="rows")
    )
    return {
        "finetuning_job": str(job.id),
        "batch_inference_job": str(batch.id),
        "deployment": "d",
        "dataset": "rows",
    }


async def test_kind_calls_reach_the_resource_sync_and_async(emulator: Any, client: Any) -> None:
    emulator.admin.set_profile(STUCK_PROFILE)
    ids = _make_one_of_each(client)
    async_client = await PredibaseHook().get_async_client()
    for name, kind in KINDS.items():
        synced = kind.get(client, ids[name])
        awaited = await kind.get(async_client, ids[name])
        assert isinstance(synced.status, kind.status), name
        assert isinstance(awaited.status, kind.status), name
        assert type(synced) is type(awaited), name
    for kind in (FINETUNING_JOB, BATCH_INFERENCE_JOB):
        assert kind.cancel is not None
        await kind.cancel(async_client, ids[kind.name])
        assert kind.get(client, ids[kind.name]).status in ("stopping", "canceled")
