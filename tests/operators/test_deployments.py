"""DeployOperator is a declarative upsert; DeleteDeploymentOperator a safe teardown."""

from __future__ import annotations

from typing import Any

import pytest

from airflow_predibase.exceptions import PredibaseInvalidParameter, PredibaseJobFailed
from airflow_predibase.operators.deployments import DeleteDeploymentOperator, DeployOperator
from tests.taskkit import make_context, run_deferred


def deploy(**overrides: Any) -> DeployOperator:
    params: dict[str, Any] = {
        "task_id": "deploy",
        "name": "router",
        "base_model": "qwen3-8b",
        "accelerator": "a10_24gb",
        "min_replicas": 0,
        "max_replicas": 1,
        "poll_interval": 0.05,
        "deferrable": False,
    }
    params.update(overrides)
    return DeployOperator(**params)


def requests_to(emulator: Any, method: str) -> int:
    return sum(1 for _ in emulator.admin.state()["deployments"]) if method == "count" else 0


def test_absent_deployment_is_created_and_waited_for(emulator: Any, client: Any):
    result = deploy().execute(make_context())
    assert result["action"] == "created"
    assert result["serving_url"] == emulator.deployment_url("router")
    current = client.get_deployment("router")
    assert current.status == "ready"
    assert current.accelerator == "a10_24gb_100"


def test_identical_configuration_sends_no_update(emulator: Any, client: Any):
    deploy().execute(make_context())
    before = client.get_deployment("router").updated_at
    assert deploy().execute(make_context())["action"] == "unchanged"
    assert client.get_deployment("router").updated_at == before


def test_changed_configuration_updates_in_place(emulator: Any, client: Any):
    deploy().execute(make_context())
    result = deploy(max_replicas=3, cooldown_time=120).execute(make_context())
    assert result["action"] == "updated"
    current = client.get_deployment("router")
    assert (current.max_replicas, current.cooldown_time) == (3, 120)
    assert current.status == "ready"


def test_accelerator_cannot_change_in_place(emulator: Any):
    deploy().execute(make_context())
    with pytest.raises(PredibaseInvalidParameter, match=r"accelerator.*a10_24gb_100 -> a100"):
        deploy(accelerator="a100_80gb_100").execute(make_context())


def test_deferred_mode_waits_in_the_trigger(emulator: Any):
    result = run_deferred(deploy(deferrable=True), make_context())
    assert result["name"] == "router"
    assert result["action"] == "created"


def test_failed_deployment_fails_the_task_with_the_reason(emulator: Any):
    emulator.admin.fail_next("deployments", error="no a10 capacity in region")
    with pytest.raises(PredibaseJobFailed, match="no a10 capacity"):
        deploy().execute(make_context())


def test_templated_ints_and_lists_rendered_as_strings_work(emulator: Any, client: Any):
    op = deploy(max_replicas="{{ params.n }}", preloaded_adapters="{{ params.adapters }}")
    op.max_replicas, op.preloaded_adapters = "2", "[]"  # as Jinja renders them
    op.execute(make_context())
    assert client.get_deployment("router").max_replicas == 2


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("accelerator", "a10", "valid accelerators: a10_24gb_100"),
        ("quantization", "int4", "none, fp8, bitsandbytes-nf4"),
        ("config", {"max_tokens": 9}, "valid keys"),
        ("min_replicas", -1, "min_replicas"),
    ],
)
def test_bad_parameters_fail_at_parse_time(field: str, value: Any, expected: str):
    with pytest.raises(PredibaseInvalidParameter, match=expected):
        deploy(**{field: value})


def test_delete_waits_until_gone_and_tolerates_missing(emulator: Any, client: Any):
    deploy().execute(make_context())
    DeleteDeploymentOperator(task_id="rm", name="router", poll_interval=0.05).execute(
        make_context()
    )
    assert emulator.admin.state()["deployments"] == []
    DeleteDeploymentOperator(task_id="rm", name="router").execute(make_context())


def test_delete_of_missing_deployment_can_be_strict(emulator: Any):
    from airflow.providers.common.compat.sdk import AirflowException

    with pytest.raises(AirflowException, match="does not exist"):
        DeleteDeploymentOperator(task_id="rm", name="nope", missing_ok=False).execute(
            make_context()
        )


def test_a_deployment_that_never_serves_is_deleted_by_the_task_that_created_it(emulator):
    emulator.admin.fail_next("deployments", error="no capacity")
    with pytest.raises(PredibaseJobFailed):
        run_deferred(deploy(deferrable=True), make_context())
    state = emulator.admin.state()["deployments"]
    assert state == [] or state[0]["status"] == "deleting"


def test_an_existing_failed_deployment_is_recreated(emulator: Any, client: Any):
    emulator.admin.fail_next("deployments", error="no capacity")
    with pytest.raises(PredibaseJobFailed):
        deploy(delete_on_failure=False).execute(make_context())
    assert client.get_deployment("router").status == "failed"
    result = deploy().execute(make_context())
    assert result["action"] == "created"
    assert client.get_deployment("router").status == "ready"


def test_reordered_preloaded_adapters_are_not_a_change(emulator: Any, client: Any):
    from airflow_predibase.client.models import Deployment, DeploymentConfig

    current = Deployment(name="d", preloaded_adapters=["a/1", "b/2"])
    assert current.differs_from(DeploymentConfig(preloaded_adapters=["b/2", "a/1"])) == {}
    assert current.differs_from(DeploymentConfig(preloaded_adapters=["a/1"])) != {}


def test_bad_request_from_the_server_fails_without_retry(emulator: Any):
    from airflow_predibase.exceptions import PredibaseRequestRejected

    with pytest.raises(PredibaseRequestRejected, match="base model"):
        deploy(base_model="gpt-17").execute(make_context())


def test_delete_timeout_is_a_timeout(emulator: Any):
    from airflow_predibase.exceptions import PredibaseJobTimeout
    from tests.taskkit import QUICK_PROFILE

    deploy().execute(make_context())
    emulator.admin.set_profile({**QUICK_PROFILE, "deployment_deleting": 3600.0})
    with pytest.raises(PredibaseJobTimeout, match="deleting"):
        DeleteDeploymentOperator(task_id="rm", name="router", timeout=0.3).execute(make_context())


def test_retry_after_delete_on_failure_waits_for_the_deletion_then_creates(emulator, client):
    from tests.taskkit import QUICK_PROFILE

    emulator.admin.set_profile({**QUICK_PROFILE, "deployment_deleting": 0.5})
    emulator.admin.fail_next("deployments", error="no capacity")
    with pytest.raises(PredibaseJobFailed):
        deploy().execute(make_context())
    assert client.get_deployment("router").status == "deleting"
    assert deploy().execute(make_context())["action"] == "created"
    assert client.get_deployment("router").status == "ready"
