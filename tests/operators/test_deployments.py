"""DeployOperator is a declarative upsert; DeleteDeploymentOperator a safe teardown."""

from __future__ import annotations

import asyncio
import importlib
import json
import threading
import time
from types import SimpleNamespace
from typing import Any

import pytest

from airflow_predibase.exceptions import (
    PredibaseInvalidParameter,
    PredibaseJobFailed,
    PredibaseJobTimeout,
)
from airflow_predibase.operators.deployments import DeleteDeploymentOperator, DeployOperator
from tests.taskkit import (
    QUICK_PROFILE,
    DictStateStore,
    make_context,
    needs_trigger_on_kill,
    run_deferred,
)


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
        ("accelerator", "", "accelerator"),
        ("config", {"backend": "v4"}, "'v1', 'v2' or 'v3'"),
        ("quantization", "int4", "none, fp8, bitsandbytes-nf4"),
        ("config", {"max_tokens": 9}, "valid keys"),
        ("min_replicas", -1, "min_replicas"),
    ],
)
def test_bad_parameters_fail_at_parse_time(field: str, value: Any, expected: str):
    with pytest.raises(PredibaseInvalidParameter, match=expected):
        deploy(**{field: value})


def test_an_accelerator_id_is_not_a_closed_list_when_the_dag_is_parsed():
    """A new SKU must not fail a DAG at parse time: the server decides at run time (its
    answer for an unknown one: tests/operators/test_settings.py)."""
    assert deploy(accelerator="b200_192gb_100").accelerator == "b200_192gb_100"


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


# -- issue 10: no orphan, no leak; never delete what this task did not create ---------------

#: Quick, except that a deployment never comes up on its own during a test.
SLOW_START = {**QUICK_PROFILE, "name": "slow-start", "deployment_initializing": 3600.0}
COMING_UP = ("pending", "initializing")


def state_of(emulator: Any, name: str = "router") -> str | None:
    """The deployment's status as the emulator keeps it; None once it is gone."""
    for item in emulator.admin.state()["deployments"]:
        if item["name"] == name:
            return str(item["status"])
    return None


def retry_context(store: DictStateStore | None = None, *, run_id: str = "manual__1") -> Any:
    """Try 1 of a task with retries=1: a retry follows if this try fails."""
    context = make_context(run_id=run_id, store=store)
    context["ti"].max_tries = 1
    context["ti"].task = SimpleNamespace(retries=1)
    return context


def task_state_is(monkeypatch: Any, state: str | None) -> None:
    """What Airflow's supervisor answers when asked for this task instance's state."""
    from airflow.sdk.execution_time.task_runner import RuntimeTaskInstance

    def get_task_states(**query: Any) -> dict[str, Any]:
        return {run_id: {query["task_ids"][0]: state} for run_id in query["run_ids"]}

    monkeypatch.setattr(RuntimeTaskInstance, "get_task_states", staticmethod(get_task_states))


def test_retry_after_a_crash_deletes_the_deployment_it_created_when_it_times_out(emulator):
    """Defect 5: try 1 creates it and its worker dies; try 2 found it 'unchanged', timed
    out, and deleted nothing, so the GPU kept billing."""
    from airflow.providers.common.compat.sdk import TaskDeferred

    emulator.admin.set_profile(SLOW_START)
    store = DictStateStore()
    with pytest.raises(TaskDeferred):
        deploy(deferrable=True).execute(retry_context(store))  # the worker dies here
    assert state_of(emulator) in COMING_UP
    with pytest.raises(PredibaseJobTimeout):
        deploy(timeout=0.3).execute(make_context(store=store))  # the last try
    assert state_of(emulator) in (None, "deleting")


def test_a_deployment_made_by_another_run_is_never_deleted_after_a_409(emulator):
    """Defect 5: another run creates the same name between this try's read and its create;
    the 409 was read back as this try's own, and delete_on_failure deleted it."""
    from airflow.providers.common.compat.sdk import TaskDeferred

    emulator.admin.set_profile(SLOW_START)
    with pytest.raises(TaskDeferred):
        deploy(deferrable=True).execute(make_context(run_id="other_run"))
    # This try reads the name before the other run's create is visible, then creates: 409.
    emulator.admin.add_fault("status", method="GET", path="/v2/deployments/router", status=404)
    with pytest.raises(PredibaseJobTimeout):
        deploy(timeout=0.3).execute(make_context())
    assert state_of(emulator) in COMING_UP


def test_an_existing_failed_deployment_of_another_run_is_not_deleted(emulator, client):
    """A deployment this task did not create is never deleted, even a failed one."""
    emulator.admin.fail_next("deployments", error="no capacity")
    with pytest.raises(PredibaseJobFailed):
        deploy(delete_on_failure=False).execute(make_context(run_id="other_run"))
    with pytest.raises(PredibaseInvalidParameter, match=r"router.*failed.*did not create"):
        deploy().execute(make_context())
    assert client.get_deployment("router").status == "failed"


def test_kill_on_the_last_try_deletes_the_deployment_it_created(emulator):
    """Defect 5: on_kill deleted nothing, and a teardown does not run after a failed setup."""
    emulator.admin.set_profile(SLOW_START)
    op = deploy()
    worker, outcome = start_blocking(op, make_context(), emulator)
    op.on_kill()  # mark failed, or execution_timeout, on the last try
    worker.join(timeout=20)
    assert state_of(emulator) in (None, "deleting")
    assert "error" in outcome


def test_kill_that_a_retry_follows_leaves_the_deployment_for_the_retry(emulator, monkeypatch):
    emulator.admin.set_profile(SLOW_START)
    task_state_is(monkeypatch, "running")  # a worker shutting down, not a user's mark
    op = deploy(timeout=1.0)
    worker, _ = start_blocking(op, retry_context(), emulator)
    op.on_kill()
    assert state_of(emulator) in COMING_UP
    worker.join(timeout=20)  # (here the try runs on to its timeout; a real one is gone)


def test_retry_after_a_crash_re_attaches_to_the_deployment_it_created(emulator, client):
    from airflow.providers.common.compat.sdk import TaskDeferred

    store = DictStateStore()
    with pytest.raises(TaskDeferred):
        deploy(deferrable=True).execute(retry_context(store))  # the worker dies here
    created_at = client.get_deployment("router").created_at
    assert deploy().execute(make_context(store=store))["action"] == "created"
    assert client.get_deployment("router").created_at == created_at


def test_kill_of_a_user_marked_failed_task_deletes_even_before_the_last_try(emulator, monkeypatch):
    emulator.admin.set_profile(SLOW_START)
    task_state_is(monkeypatch, "failed")
    op = deploy()
    worker, _ = start_blocking(op, retry_context(), emulator)
    op.on_kill()
    worker.join(timeout=20)
    assert state_of(emulator) in (None, "deleting")


@needs_trigger_on_kill
@pytest.mark.parametrize(
    ("task_state", "deleted"),
    [("failed", True), ("success", True), ("up_for_retry", False), ("restarting", False)],
)
def test_killing_a_deferred_deploy_deletes_only_when_the_task_is_over(
    emulator, monkeypatch, task_state, deleted: bool
):
    """Defect 5, deferred: mark failed while the trigger waits deleted nothing."""
    emulator.admin.set_profile(SLOW_START)
    task_state_is(monkeypatch, task_state)
    trigger = deferred_trigger(deploy(deferrable=True), retry_context())
    asyncio.run(trigger.on_kill())
    assert (state_of(emulator) in (None, "deleting")) is deleted


@needs_trigger_on_kill
def test_killing_a_deferred_deploy_never_deletes_another_runs_deployment(emulator, monkeypatch):
    """The deployment this run waited on was deleted and another run made the same name:
    the kill must leave the other run's deployment alone."""
    emulator.admin.set_profile(SLOW_START)
    task_state_is(monkeypatch, "failed")
    trigger = deferred_trigger(deploy(deferrable=True), make_context())
    DeleteDeploymentOperator(task_id="rm", name="router", poll_interval=0.05).execute(
        make_context()
    )
    deferred_trigger(deploy(deferrable=True), make_context(run_id="other_run"))
    asyncio.run(trigger.on_kill())
    assert state_of(emulator) in COMING_UP


def test_the_deferral_backstop_deletes_the_deployment_it_created(emulator):
    """Defect 5, deferred: the scheduler's backstop failed the task without deleting."""
    from airflow.providers.common.compat.sdk import TaskDeferred
    from airflow.sdk.bases.operator import TRIGGER_FAIL_REPR, TriggerFailureReason

    emulator.admin.set_profile(SLOW_START)
    op, context = deploy(deferrable=True, timeout=0.3), make_context()
    with pytest.raises(TaskDeferred):
        op.execute(context)
    error = {"error": TriggerFailureReason.TRIGGER_TIMEOUT}
    with pytest.raises(PredibaseJobTimeout):
        deploy(deferrable=True).resume_execution(TRIGGER_FAIL_REPR, error, context)
    assert state_of(emulator) in (None, "deleting")


def test_deferred_timeout_deletes_the_deployment_a_crashed_try_created(emulator):
    from airflow.providers.common.compat.sdk import TaskDeferred

    emulator.admin.set_profile(SLOW_START)
    store = DictStateStore()
    with pytest.raises(TaskDeferred):
        deploy(deferrable=True).execute(retry_context(store))  # the worker dies here
    with pytest.raises(PredibaseJobTimeout):
        run_deferred(deploy(deferrable=True, timeout=0.5), make_context(store=store))
    assert state_of(emulator) in (None, "deleting")


def test_a_deployment_that_served_is_not_deleted_when_a_later_try_fails(emulator, client):
    store = DictStateStore()
    assert deploy().execute(make_context(store=store))["action"] == "created"
    emulator.admin.set_profile({**QUICK_PROFILE, "deployment_updating": 3600.0})
    with pytest.raises(PredibaseJobTimeout):
        # A clear with another setting: the update is still rolling out at the timeout.
        deploy(max_replicas=2, timeout=0.3).execute(make_context(store=store, clears=1))
    assert state_of(emulator) == "updating"


def test_delete_on_failure_false_keeps_it_whatever_ends_the_task(emulator):
    emulator.admin.set_profile(SLOW_START)
    op = deploy(delete_on_failure=False)
    worker, _ = start_blocking(op, make_context(), emulator)
    op.on_kill()
    worker.join(timeout=20)
    with pytest.raises(PredibaseJobTimeout):
        deploy(delete_on_failure=False, timeout=0.3).execute(make_context())
    assert state_of(emulator) in COMING_UP


def test_ownership_marker_keeps_the_users_description_and_the_upsert_unchanged(emulator, client):
    op = deploy(config={"description": "eval router"})
    assert op.execute(make_context())["action"] == "created"
    description = client.get_deployment("router").description
    assert description.startswith("eval router [airflow-deployment:")
    again = deploy(config={"description": "eval router"}).execute(make_context(run_id="other"))
    assert again["action"] == "unchanged"
    deploy(config={"description": "new"}).execute(make_context(run_id="other"))
    # An update by another run keeps the creator's marker: it still owns it.
    assert client.get_deployment("router").description == description.replace("eval router", "new")


# -- defect 6: an unknown-outcome create ---------------------------------------------------


@pytest.fixture
def quick_looks(monkeypatch: Any) -> None:
    from airflow_predibase.operators import deployments

    monkeypatch.setattr(deployments, "LOST_CREATE_LOOKS", (0.0, 0.05, 0.1))


def test_a_503_on_create_keeps_looking_then_creates_it(emulator, client, quick_looks):
    """Defect 6: one transient 503 on the create read the name back once, and its 404
    failed the task."""
    emulator.admin.add_fault("status", method="POST", path="/v2/deployments", status=503)
    assert deploy().execute(make_context())["action"] == "created"
    assert client.get_deployment("router").status == "ready"


def test_a_lost_create_response_is_found_and_owned(emulator, quick_looks):
    emulator.admin.set_profile(SLOW_START)
    emulator.admin.add_fault("drop_after", method="POST", path="/v2/deployments")
    with pytest.raises(PredibaseJobTimeout):
        deploy(timeout=0.5).execute(make_context())
    assert state_of(emulator) in (None, "deleting")
    assert len(emulator.admin.state()["deployments"]) <= 1


# -- defect 11: names and clean parse-time errors ------------------------------------------


@pytest.mark.parametrize("name", ["", "   ", None, "team/router", "router ", ".."])
def test_a_name_the_platform_cannot_address_fails_at_parse_time(name: Any):
    with pytest.raises(PredibaseInvalidParameter, match=r"deploy: name\b"):
        deploy(name=name)
    with pytest.raises(PredibaseInvalidParameter, match=r"rm: name\b"):
        DeleteDeploymentOperator(task_id="rm", name=name)


def test_a_rendered_empty_name_fails_before_any_request(emulator: Any):
    op = deploy(name="{{ params.name }}")
    op.name = ""  # as Jinja renders a missing param
    with pytest.raises(PredibaseInvalidParameter, match="name=''"):
        op.execute(make_context())
    rm = DeleteDeploymentOperator(task_id="rm", name="{{ params.name }}")
    rm.name = ""
    with pytest.raises(PredibaseInvalidParameter, match="name=''"):
        rm.execute(make_context())


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("min_replicas", -1, r"min_replicas=-1 is not valid: .*0"),
        ("config", {"prefix_caching": "maybe"}, r"prefix_caching='maybe' is not valid"),
        ("accelerator", "", r"accelerator='' is not valid: .*at least 1 character"),
        ("config", {"max_num_batched_tokens": -5}, r"max_num_batched_tokens=-5 is not valid"),
        ("base_model", "", r"base_model='' is not valid"),
    ],
)
def test_parse_time_errors_name_the_field_without_pydantic_noise(field, value, expected):
    with pytest.raises(PredibaseInvalidParameter, match=expected) as error:
        deploy(**{field: value})
    message = str(error.value)
    assert "pydantic" not in message
    assert "[type=" not in message
    assert "validation error" not in message


def start_blocking(op: DeployOperator, context: Any, emulator: Any) -> tuple[Any, dict]:
    """Run `op` in blocking mode on a thread until its deployment exists."""
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            op.execute(context)
        except BaseException as error:
            outcome["error"] = error

    worker = threading.Thread(target=run)
    worker.start()
    deadline = time.monotonic() + 10
    while state_of(emulator) is None:
        assert time.monotonic() < deadline, "the deployment was never created"
        time.sleep(0.02)
    time.sleep(0.1)  # into the wait
    return worker, outcome


def deferred_trigger(op: DeployOperator, context: Any) -> Any:
    """The trigger `op` defers to, as the triggerer rebuilds it, with its task instance."""
    from airflow.providers.common.compat.sdk import TaskDeferred

    with pytest.raises(TaskDeferred) as deferred:
        op.execute(context)
    classpath, kwargs = deferred.value.trigger.serialize()
    module, _, name = classpath.rpartition(".")
    trigger = getattr(importlib.import_module(module), name)(**json.loads(json.dumps(kwargs)))
    ti = context["ti"]
    trigger.task_instance = SimpleNamespace(
        dag_id=ti.dag_id, task_id="deploy", run_id=ti.run_id, map_index=-1
    )
    return trigger


def test_a_cleanup_that_fails_keeps_the_original_error(emulator: Any, client: Any):
    """The platform failing the cleanup's read must not turn a final error (not retried)
    into a retried one."""
    op = deploy()
    context = make_context()
    emulator.admin.add_fault("status", method="GET", path="/v2/deployments/router", status=400)
    with pytest.raises(PredibaseJobTimeout), op._cleanup_when_over(context, "router"):
        raise PredibaseJobTimeout("timed out", resource_id="router", remote_status="pending")
