"""Kind names: one canonical name per resource kind (the provider's registry), old spellings
still accepted by the control API, and every kind's storage, views and 404s from one base."""

from __future__ import annotations

import httpx
import pytest
from emulator_testkit import BASE_MODEL, Emu, sentiment_rows

from airflow_predibase import kinds
from airflow_predibase.emulator.backend import Backend
from airflow_predibase.emulator.clock import ManualClock
from airflow_predibase.emulator.config import EmulatorConfig
from airflow_predibase.emulator.resources._base import KindTable, LifecycleResource
from airflow_predibase.emulator.store import MemoryStore


@pytest.fixture
def backend() -> Backend:
    return Backend(EmulatorConfig(), MemoryStore(), ManualClock())


def test_each_waitable_kind_is_named_as_the_provider_names_it(backend: Backend) -> None:
    lifecycles = [r for r in backend.resources if isinstance(r, LifecycleResource)]
    assert {r.kind for r in lifecycles} == set(kinds.KINDS)
    for resource in lifecycles:
        registered = kinds.resource_kind(resource.kind)
        assert resource.label == registered.label
        assert resource.status_enum is registered.status
    assert backend.repos.kind == "repo"


def test_the_control_api_resolves_canonical_names_and_the_old_spellings(backend: Backend) -> None:
    table = backend.kinds
    for name, resource in [
        ("finetuning_job", backend.finetuning),
        ("finetuning", backend.finetuning),
        ("finetuning_jobs", backend.finetuning),
        ("batch_inference_job", backend.batch),
        ("batch", backend.batch),
        ("batch_jobs", backend.batch),
        ("deployment", backend.deployments),
        ("deployments", backend.deployments),
        ("dataset", backend.datasets),
        ("datasets", backend.datasets),
    ]:
        assert table.resolve(name) is resource, name
    assert table.get("repo") is None  # no lifecycle: nothing to advance, force or fail


def test_two_kinds_cannot_share_a_name(backend: Backend) -> None:
    with pytest.raises(ValueError, match="called 'dataset'"):
        KindTable([backend.datasets, backend.datasets])


def test_every_spelling_works_over_http(emu: Emu) -> None:
    emu.dataset("reviews", sentiment_rows(8))
    emu.repo("r")
    job = emu.job("r", "reviews")
    assert emu.admin.advance("finetuning_job", job["id"])["status"] == "training"
    assert emu.admin.force("finetuning_jobs", job["id"], "completed")["status"] == "completed"
    emu.admin.fail_next("deployment", error="no capacity")
    emu.admin.fail_next("batch_inference_job", count=2)
    scheduled = emu.admin.state()["scheduled_failures"]
    assert scheduled == {"deployment": 1, "batch_inference_job": 2}
    emu.ok(emu.control.post("/deployments", json={"name": "d", "base_model": BASE_MODEL}))
    assert emu.admin.force("deployments", "d", "initializing")["status"] == "initializing"
    assert emu.admin.advance("deployment", "d")["status"] == "failed"


def test_unknown_kinds_and_keys_are_named_in_the_error(emu: Emu) -> None:
    admin = httpx.Client(base_url=f"{emu.server.url}/__emulator__", headers=emu.auth, timeout=10)
    with admin:
        unknown = admin.post("/resources/jobs/x/advance")
        assert unknown.status_code == 404
        assert "finetuning_job (or finetuning, finetuning_jobs)" in unknown.json()["error"]
        bad = admin.post("/fail-next", json={"kind": "repos"})
        assert bad.status_code == 422
        assert "'repos'" in bad.json()["error"]
        missing = admin.post("/resources/batch/nope/force", json={"status": "running"})
        assert (missing.status_code, missing.json()) == (
            404,
            {"error": "batch inference job 'nope' not found"},
        )
        status = admin.post("/resources/datasets/nope/force", json={"status": "exploded"})
        assert status.status_code == 400
        assert "unknown dataset status 'exploded'" in status.json()["error"]


def test_each_kind_answers_its_own_404(emu: Emu) -> None:
    for path, message in [
        ("/datasets/nope", "dataset 'nope' not found"),
        ("/repos/nope", "adapter repository 'nope' not found"),
        ("/finetuning/jobs/nope", "fine-tuning job 'nope' not found"),
        ("/deployments/nope", "deployment 'nope' not found"),
        ("/batch-inference/jobs/nope", "batch inference job 'nope' not found"),
    ]:
        response = emu.control.get(path)
        assert (response.status_code, response.json()) == (404, {"error": message}), path
