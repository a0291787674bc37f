"""DeployOperator (declarative upsert) and DeleteDeploymentOperator (a teardown)."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import AirflowException
from pydantic import ValidationError

from airflow_predibase.client.errors import ConflictError, NotFoundError, OutcomeUnknownError
from airflow_predibase.exceptions import PredibaseInvalidParameter, PredibaseJobTimeout
from airflow_predibase.kinds import DEPLOYMENT
from airflow_predibase.operators._base import (
    PredibaseBaseOperator,
    coerce_int,
    coerce_list,
    coerce_mapping,
    fail_fast_on_rejection,
    is_templated,
)
from airflow_predibase.waiting.events import JobEvent

if TYPE_CHECKING:
    from airflow_predibase.client import PredibaseClient
    from airflow_predibase.client.models import (
        Deployment,
        DeploymentRequest,
    )
    from airflow_predibase.lineage import DeleteFacts, DeployFacts

QUANTIZATIONS = ("none", "fp8", "bitsandbytes-nf4")
_XCOM_ACTION = "deploy_action"
#: Settings accepted through `config`, beside the operator's named parameters.
CONFIG_KEYS = (
    "scale_up_threshold",
    "max_total_tokens",
    "prefix_caching",
    "speculator",
    "uses_guaranteed_capacity",
    "description",
)


class DeployOperator(PredibaseBaseOperator):
    """Make a deployment exist with exactly this configuration, then wait until it serves.

    Declarative: absent -> created; present with a different configuration -> updated
    (only the settings given here are compared; the accelerator and base model cannot be
    changed in place); identical -> nothing is sent. Returns
    ``{"name", "serving_url", "action"}`` where action is created, updated or unchanged.
    Pair it with :class:`DeleteDeploymentOperator` as a teardown so a failed run never
    leaves a GPU billing.

    :param name: deployment name.
    :param base_model: base model to serve.
    :param accelerator: GPU, e.g. ``a10_24gb_100`` or ``a100_80gb_100`` (short forms
        ``a10_24gb`` / ``a100_80gb`` accepted).
    :param min_replicas: 0 lets it scale to ``standby`` after ``cooldown_time``.
    :param max_replicas: upper bound of replicas.
    :param cooldown_time: idle seconds before scaling down.
    :param quantization: ``none``, ``fp8`` or ``bitsandbytes-nf4``.
    :param preloaded_adapters: adapter IDs (``repo/N``) to load at start.
    :param config: other settings: ``scale_up_threshold``, ``max_total_tokens``,
        ``prefix_caching``, ``speculator``, ``uses_guaranteed_capacity``, ``description``.
    :param wait_for_ready: wait until the deployment serves (``ready`` or ``standby``).
    :param delete_on_failure: when this task created the deployment and it fails or times
        out before serving, delete it (a teardown does not run when its setup failed).
    A deployment found ``failed``, ``stopped`` or ``deleting`` is (waited until) deleted and
    created again, whatever ``delete_on_failure`` says.
    See :class:`PredibaseBaseOperator` for the connection, waiting and timeout parameters.
    """

    template_fields: Sequence[str] = (
        "name",
        "base_model",
        "accelerator",
        "min_replicas",
        "max_replicas",
        "cooldown_time",
        "quantization",
        "preloaded_adapters",
        "config",
    )
    template_fields_renderers = {"config": "json"}
    kind = DEPLOYMENT
    _lineage: DeployFacts | None = None

    def __init__(
        self,
        *,
        name: str,
        base_model: str,
        accelerator: str | None = None,
        min_replicas: int | str | None = None,
        max_replicas: int | str | None = None,
        cooldown_time: int | str | None = None,
        quantization: str | None = None,
        preloaded_adapters: list[str] | str | None = None,
        config: dict[str, Any] | str | None = None,
        wait_for_ready: bool = True,
        delete_on_failure: bool = True,
        poll_interval: float = 15.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(poll_interval=poll_interval, **kwargs)
        self.name = name
        self.base_model = base_model
        self.accelerator = accelerator
        self.min_replicas = min_replicas
        self.max_replicas = max_replicas
        self.cooldown_time = cooldown_time
        self.quantization = quantization
        self.preloaded_adapters = preloaded_adapters
        self.config = config
        self.wait_for_ready = wait_for_ready
        self.delete_on_failure = delete_on_failure
        if not any(is_templated(str(getattr(self, f))) for f in self.template_fields):
            self._request()  # bad literal parameters fail when the DAG is parsed

    def _request(self) -> DeploymentRequest:
        from airflow_predibase.client.models import DeploymentRequest

        try:
            if self.quantization is not None and self.quantization not in QUANTIZATIONS:
                raise ValueError(
                    f"quantization={self.quantization!r} is not valid; "
                    f"choose one of: {', '.join(QUANTIZATIONS)}"
                )
            extra = coerce_mapping(self.config, "config")
            unknown = sorted(set(extra) - set(CONFIG_KEYS))
            if unknown:
                raise ValueError(f"config has unknown keys {unknown}; valid keys: {CONFIG_KEYS}")
            return DeploymentRequest(
                name=self.name,
                base_model=self.base_model,
                accelerator=self.accelerator,
                min_replicas=coerce_int(self.min_replicas, "min_replicas"),
                max_replicas=coerce_int(self.max_replicas, "max_replicas"),
                cooldown_time=coerce_int(self.cooldown_time, "cooldown_time"),
                quantization=self.quantization,  # type: ignore[arg-type]
                preloaded_adapters=coerce_list(self.preloaded_adapters, "preloaded_adapters"),
                **extra,
            )
        except (ValueError, ValidationError) as error:
            raise PredibaseInvalidParameter(f"DeployOperator {self.task_id}: {error}") from None

    @fail_fast_on_rejection
    def execute(self, context: Any) -> Any:
        from airflow_predibase.client.models import DeploymentStatus

        request = self._request()
        try:
            current: Deployment | None = self.client.get_deployment(request.name)
        except NotFoundError:
            current = None
        going = (DeploymentStatus.DELETING,)
        if current is not None and (current.status.is_failure or current.status in going):
            # Failed (or already going away, e.g. after an earlier try's delete_on_failure):
            # make sure it is gone, then create it afresh.
            self.log.warning(
                "deployment %s is %s: deleting it to create it again", current.name, current.status
            )
            delete_and_wait(
                self.client,
                current.name,
                poll_interval=self.poll_interval,
                deadline=self._deadline(),
                log=self.log,
            )
            current = None
        if current is None:
            current, self._action = self._create(request), "created"
        else:
            current, self._action = self._converge(current, request)
        self._publish(context, self.kind, request.name)
        # Survives the deferral (a resumed task keeps its XComs); read back in _finish.
        context["ti"].xcom_push(key=_XCOM_ACTION, value=self._action)
        if not self.wait_for_ready:
            self._record_lineage(current)
            return self._result(request.name)
        event = self._wait(current, request.name, self._deadline())
        return self._finish(context, event)

    def _create(self, request: DeploymentRequest) -> Deployment:
        try:
            return self.client.create_deployment(request)
        except (ConflictError, OutcomeUnknownError) as error:
            # Created concurrently, or by our own request whose answer was lost.
            self.log.info("create did not answer cleanly (%s); reading it back", error)
            return self.client.get_deployment(request.name)

    def _converge(self, current: Deployment, request: DeploymentRequest) -> tuple[Deployment, str]:
        """Update `current` to what `request` asks for; the accelerator and base model are fixed."""
        from airflow_predibase.client.models import DeploymentConfig, DeploymentUpdateRequest

        wanted = DeploymentConfig.model_validate(request.model_dump(exclude={"name"}))
        diff = current.differs_from(wanted)
        if current.base_model != request.base_model:
            diff["base_model"] = (current.base_model, request.base_model)
        fixed = sorted({"accelerator", "base_model"} & set(diff))
        if fixed:
            raise PredibaseInvalidParameter(
                f"deployment {request.name} exists with a different {' and '.join(fixed)} "
                f"({', '.join(f'{k}: {diff[k][0]} -> {diff[k][1]}' for k in fixed)}); "
                "these cannot change in place: delete it or choose another name"
            )
        if not diff:
            self.log.info("deployment %s already has this configuration", request.name)
            return current, "unchanged"
        self.log.info("updating deployment %s: %s", request.name, diff)
        changes = {field: new for field, (_, new) in diff.items()}
        return self.client.update_deployment(request.name, DeploymentUpdateRequest(**changes)), (
            "updated"
        )

    def _finish(self, context: Any, event: JobEvent) -> Any:
        if not hasattr(self, "_action"):  # resumed after deferral: a fresh operator object
            ti = context["ti"]
            self._action = ti.xcom_pull(task_ids=ti.task_id, key=_XCOM_ACTION)
        if event.status != "success" and self._action == "created" and self.delete_on_failure:
            # A teardown only runs when its setup succeeded: clean up what this task made.

            self.log.warning("deleting deployment %s, which never served", event.resource_id)
            with contextlib.suppress(NotFoundError):
                self.client.delete_deployment(event.resource_id)
        return super()._finish(context, event)

    def _result(self, name: str) -> dict[str, Any]:
        try:
            serving_url: str | None = self.client.deployment_url(name)
        except ValueError as error:  # no tenant ID on the connection
            self.log.warning("no serving URL: %s", error)
            serving_url = None
        return {"name": name, "serving_url": serving_url, "action": getattr(self, "_action", None)}

    def _on_success(self, context: Any, event: JobEvent) -> dict[str, Any]:
        self.log.info("deployment %s serves (%s)", event.resource_id, event.remote_status)
        from airflow_predibase.client.models import Deployment

        # After a deferral too: the deployment as the event reports it.
        self._record_lineage(
            Deployment.model_validate(event.resource or {"name": event.resource_id})
        )
        return self._result(event.resource_id)

    def _record_lineage(self, deployment: Deployment) -> None:
        from airflow_predibase.lineage import DeployFacts

        self._lineage = DeployFacts(
            deployment=deployment.name,
            base_model=deployment.base_model,
            adapters=tuple(deployment.preloaded_adapters or ()),
            action=getattr(self, "_action", None),
        )

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        """OpenLineage: the preloaded adapters -> the deployment (docs/lineage.md)."""
        from airflow_predibase.lineage import build

        return build(self._lineage, self.hook.get_settings)


class DeleteDeploymentOperator(PredibaseBaseOperator):
    """Delete a deployment and wait until it is gone. Made to run as a teardown.

    ``deploy >> work >> DeleteDeploymentOperator(...).as_teardown(setups=deploy)`` deletes
    the deployment whether ``work`` succeeded or failed. Deleting one that does not exist
    succeeds (``missing_ok``), so re-runs and clears are safe.

    :param name: deployment name.
    :param missing_ok: succeed when there is nothing to delete.
    :param wait_for_deletion: poll until the deployment is gone (bounded by ``timeout``,
        default 15 minutes).
    """

    template_fields: Sequence[str] = ("name",)
    kind = DEPLOYMENT
    _lineage: DeleteFacts | None = None

    def __init__(
        self,
        *,
        name: str,
        missing_ok: bool = True,
        wait_for_deletion: bool = True,
        poll_interval: float = 5.0,
        timeout: float | None = 900.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(poll_interval=poll_interval, timeout=timeout, **kwargs)
        self.name = name
        self.missing_ok = missing_ok
        self.wait_for_deletion = wait_for_deletion

    @fail_fast_on_rejection
    def execute(self, context: Any) -> None:
        try:
            self.client.get_deployment(self.name)
        except NotFoundError:
            if not self.missing_ok:
                raise AirflowException(f"deployment {self.name} does not exist") from None
            self.log.info("deployment %s does not exist: nothing to delete", self.name)
            return
        self._publish(context, self.kind, self.name)
        delete_and_wait(
            self.client,
            self.name,
            poll_interval=self.poll_interval,
            deadline=self._deadline(),
            log=self.log,
            wait=self.wait_for_deletion,
        )
        from airflow_predibase.lineage import DeleteFacts

        self._lineage = DeleteFacts(self.name)

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        """OpenLineage: the deployment, with a ``DROP`` lifecycle change (docs/lineage.md)."""
        from airflow_predibase.lineage import build

        return build(self._lineage, self.hook.get_settings)


def delete_and_wait(
    client: PredibaseClient,
    name: str,
    *,
    poll_interval: float,
    deadline: float | None,
    log: Any,
    wait: bool = True,
) -> None:
    """Delete `name` and (if `wait`) poll until it is gone; PredibaseJobTimeout after
    `deadline`. A deployment that is already gone is fine."""

    log.info("deleting deployment %s", name)
    try:
        with contextlib.suppress(ConflictError):  # already being deleted
            client.delete_deployment(name)
        while wait:
            current = client.get_deployment(name)
            if deadline is not None and time.time() >= deadline:
                raise PredibaseJobTimeout(
                    f"deployment {name} is still {current.status} after the timeout",
                    resource_id=name,
                    remote_status=str(current.status),
                )
            time.sleep(poll_interval)
    except NotFoundError:
        log.info("deployment %s is gone", name)
