"""DeployOperator: a declarative upsert of a deployment (its teardown,
DeleteDeploymentOperator, lives in deployment_teardown.py and is importable from here)."""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import AirflowFailException
from pydantic import ValidationError

from airflow_predibase.client.errors import (
    BadRequestError,
    ConflictError,
    NotFoundError,
    OutcomeUnknownError,
    PredibaseError,
)
from airflow_predibase.exceptions import (
    PredibaseInvalidParameter,
    PredibaseJobFailed,
)
from airflow_predibase.kinds import DEPLOYMENT
from airflow_predibase.operators._base import (
    PredibaseBaseOperator,
    check_choice,
    coerce_int,
    coerce_list,
    coerce_mapping,
    fail_fast_on_rejection,
    is_templated,
)
from airflow_predibase.operators._settings import AirflowSecret, explain
from airflow_predibase.operators._validation import check_name
from airflow_predibase.operators.deployment_teardown import (
    DeleteDeploymentOperator as DeleteDeploymentOperator,
)
from airflow_predibase.operators.deployment_teardown import (
    check_hourly_rate,
    delete_and_wait,
    lifetime_report,
)
from airflow_predibase.waiting.events import JobEvent

if TYPE_CHECKING:
    from airflow_predibase.client.models import (
        Deployment,
        DeploymentRequest,
    )
    from airflow_predibase.lineage import DeployFacts

#: Written into the description of each deployment this provider creates: the task
#: instance that created it (owns it). Only the owner ever deletes it on a failure or kill.
_MARKER = "[airflow-deployment:{key}]"
_MARKER_RE = re.compile(r"\[airflow-deployment:[^\]\s]+\]")
#: Task state store key: the deployment this task instance saw serve (or handed over with
#: wait_for_ready=False). A deployment that served is never deleted on a failure.
_SERVED = "predibase_deployment_served"
#: Pauses (seconds) between looks for a deployment whose create answer was lost, before the
#: create is sent again: the platform may show it late, and it was struggling to answer.
LOST_CREATE_LOOKS = (0.0, 1.0, 2.0, 4.0, 8.0)

QUANTIZATIONS = ("none", "fp8", "bitsandbytes-nf4")
_XCOM_ACTION = "deploy_action"
#: Settings set by the operator's own parameters, not through `config`.
_NAMED = frozenset(
    {
        "name",
        "base_model",
        "accelerator",
        "min_replicas",
        "max_replicas",
        "cooldown_time",
        "quantization",
        "preloaded_adapters",
        "hf_token",
    }
)
#: Settings every platform build reports on a deployment: compared even when absent
#: (absent means unset). Others are compared only when the platform reports them.
_ALWAYS_REPORTED = frozenset(
    {
        "accelerator",
        "min_replicas",
        "max_replicas",
        "cooldown_time",
        "scale_up_threshold",
        "quantization",
        "max_total_tokens",
        "preloaded_adapters",
        "prefix_caching",
        "speculator",
        "uses_guaranteed_capacity",
        "description",
    }
)
#: Settings that cannot change in place: a different value needs a new deployment.
_FIXED = ("accelerator", "base_model", "compute_spec")


def config_keys() -> tuple[str, ...]:
    """Settings accepted through `config`: every `DeploymentConfig` field but the named
    parameters (derived from the model, so a new setting is accepted once it is there)."""
    from airflow_predibase.client.models import DeploymentConfig

    return tuple(sorted(set(DeploymentConfig.model_fields) - _NAMED))


class DeployOperator(PredibaseBaseOperator):
    """Make a deployment exist with exactly this configuration, then wait until it serves.

    Declarative: absent -> created; present with a different configuration -> updated
    (only the settings given here are compared; the accelerator and base model cannot be
    changed in place); identical -> nothing is sent. Returns
    ``{"name", "serving_url", "action"}`` where action is created, updated or unchanged.
    Pair it with :class:`DeleteDeploymentOperator` as a teardown so a failed run never
    leaves a GPU billing.

    A deployment this operator creates carries its task instance's ownership marker in its
    description. However the task ends without success (a failure, its timeout, a kill or
    mark-failed, the last try after a worker crash), a deployment it owns and never saw
    serve is deleted; one it does not own is never deleted (see docs/operators/deploy.md).

    :param name: deployment name.
    :param base_model: base model to serve.
    :param accelerator: GPU, e.g. ``a10_24gb_100`` or ``a100_80gb_100`` (short forms
        ``a10_24gb`` / ``a100_80gb`` accepted). Not a closed list: an ID the platform does
        not offer fails the task, not retried, with the IDs the platform reports.
    :param min_replicas: 0 lets it scale to ``standby`` after ``cooldown_time``.
    :param max_replicas: upper bound of replicas.
    :param cooldown_time: idle seconds before scaling down.
    :param quantization: ``none``, ``fp8`` or ``bitsandbytes-nf4``.
    :param preloaded_adapters: adapter IDs (``repo/N``) to load at start.
    :param config: every other setting of the SDK's ``DeploymentConfig`` /
        ``UpdateDeploymentConfig``, under its snake_case names (a mapping, or JSON from a
        template): ``scale_up_threshold``, ``max_total_tokens``,
        ``max_num_batched_tokens``, ``prefix_caching``, ``chunked_prefill``,
        ``speculator``, ``speculation_disable_by_batch_size``,
        ``uses_guaranteed_capacity``, ``custom_args``, ``lorax_image_tag``,
        ``request_logging_enabled``, ``direct_ingress``, ``backend`` (v1, v2, v3),
        ``disable_adapters``, ``merge_adapter``, ``cache_model``, ``compute_spec``
        (``{"requests": {"inference": {"sku": ...}}, "region": ...}``), ``description``.
    :param hf_token: a Hugging Face token for gated or private base models, as an
        :class:`~airflow_predibase.operators.AirflowSecret` (a connection or a Variable,
        read when the task runs; never a literal or a template). The platform never
        reports it back, so a changed token alone does not update a deployment; it is
        sent with every create and update.
    :param wait_for_ready: wait until the deployment serves (``ready`` or ``standby``).
    :param delete_on_failure: when the task ends without success, delete the deployment if
        this task instance created it and never saw it serve (a teardown does not run when
        its setup failed). ``False`` leaves it in place whatever happens.
    :param hourly_rate: what the deployment costs per hour, **as you know it** (your
        contract or the console's price list, in your currency): the provider knows no
        prices and never invents one. When this task deletes the deployment it logs how
        long it lived, and with a rate the cost that lifetime comes to.
    A deployment this task created that is found ``failed`` or ``stopped`` is deleted and
    created again; one being deleted is waited for and created again. A ``failed`` one that
    another task created is refused, never deleted.
    See :class:`PredibaseBaseOperator` for the connection, waiting and timeout parameters;
    ``cancel_on_kill=False`` keeps the deployment when the task is killed.
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
    #: This try saw the deployment serve (or returned without waiting).
    _saw_serve = False
    #: Cleanup already ran in this try (a kill and the failure it causes both ask).
    _cleaned_up = False
    #: The marker a deferred kill looks for before it deletes; None: it deletes nothing.
    _kill_marker: str | None = None
    _context: Any = None

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
        hf_token: AirflowSecret | dict[str, str] | None = None,
        wait_for_ready: bool = True,
        delete_on_failure: bool = True,
        hourly_rate: float | None = None,
        poll_interval: float = 15.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(poll_interval=poll_interval, **kwargs)
        self.hourly_rate = check_hourly_rate(hourly_rate, f"DeployOperator {self.task_id}")
        self.name = name
        self.base_model = base_model
        self.accelerator = accelerator
        self.min_replicas = min_replicas
        self.max_replicas = max_replicas
        self.cooldown_time = cooldown_time
        self.quantization = quantization
        self.preloaded_adapters = preloaded_adapters
        self.config = config
        try:  # not a template field: a reference, read on the worker
            self.hf_token = None if hf_token is None else AirflowSecret.parse(hf_token, "hf_token")
        except ValueError as error:
            raise PredibaseInvalidParameter(f"DeployOperator {self.task_id}: {error}") from None
        self.wait_for_ready = wait_for_ready
        self.delete_on_failure = delete_on_failure
        self._check_literals()
        if not any(is_templated(str(getattr(self, f))) for f in self.template_fields):
            self._request(resolve=False)  # bad literal parameters fail when the DAG is parsed

    def _check_literals(self) -> None:
        """The parameters that can be checked alone, even beside a templated one."""
        try:
            check_name("name", self.name)
            if not is_templated(self.base_model) and (
                not isinstance(self.base_model, str) or not self.base_model.strip()
            ):
                raise ValueError(
                    f"base_model={self.base_model!r} is not valid: give the base model to serve"
                )
            if self.quantization is not None:
                check_choice("quantization", self.quantization, QUANTIZATIONS)
        except ValueError as error:
            raise PredibaseInvalidParameter(f"DeployOperator {self.task_id}: {error}") from None

    def _request(self, *, resolve: bool = True) -> DeploymentRequest:
        """The validated request; with `resolve`, the token is read from Airflow (on the
        worker), else a placeholder stands in for it."""
        from airflow_predibase.client.models import DeploymentRequest

        self._check_literals()
        try:
            extra = coerce_mapping(self.config, "config")
            named = sorted(set(extra) & _NAMED)
            if named:
                raise ValueError(
                    f"config sets {', '.join(named)}: pass "
                    f"{' and '.join(f'{k}=' for k in named)} to DeployOperator instead"
                )
            valid = config_keys()
            unknown = sorted(set(extra) - set(valid))
            if unknown:
                raise ValueError(
                    f"config has unknown keys {unknown}; valid keys: {', '.join(valid)}"
                )
            request = DeploymentRequest(
                name=self.name,
                base_model=self.base_model,
                accelerator=self.accelerator,
                min_replicas=coerce_int(self.min_replicas, "min_replicas"),
                max_replicas=coerce_int(self.max_replicas, "max_replicas"),
                cooldown_time=coerce_int(self.cooldown_time, "cooldown_time"),
                quantization=self.quantization,  # type: ignore[arg-type]
                preloaded_adapters=coerce_list(self.preloaded_adapters, "preloaded_adapters"),
                hf_token=self._hf_token(resolve),  # type: ignore[arg-type]
                **extra,
            )
            low, high = request.min_replicas, request.max_replicas
            if low is not None and high is not None and low > high:
                raise ValueError(f"min_replicas ({low}) is larger than max_replicas ({high})")
            return request
        except ValidationError as error:
            raise PredibaseInvalidParameter(
                f"DeployOperator {self.task_id}: {explain(error, default='config')}"
            ) from None
        except ValueError as error:
            raise PredibaseInvalidParameter(f"DeployOperator {self.task_id}: {error}") from None

    def _hf_token(self, resolve: bool) -> str | None:
        if self.hf_token is None:
            return None
        return self.hf_token.resolve("hf_token") if resolve else "<secret>"

    def execute(self, context: Any) -> Any:
        request = self._request()  # a bad parameter fails before any request
        self._ti, self._context = context["ti"], context
        with self._cleanup_when_over(context, request.name):
            return self._deploy(context, request)

    def resume_execution(self, next_method: str, next_kwargs: Any, context: Any) -> Any:
        self._ti, self._context = context["ti"], context
        self._active_id = self.name
        with self._cleanup_when_over(context, self.name):
            return super().resume_execution(next_method, next_kwargs, context)

    @fail_fast_on_rejection
    def _deploy(self, context: Any, request: DeploymentRequest) -> Any:
        from airflow_predibase.client.models import DeploymentStatus

        self._active_id = request.name  # from here on, a kill may have something to clean
        self._marker = self._owner_marker(context)
        current = self._find(request.name)
        if current is not None and (
            current.status.is_failure or current.status == DeploymentStatus.DELETING
        ):
            self._clear_the_way(current)
            current = None
        if current is None:
            current, self._action = self._create(context, request), "created"
            if not self._ours(current):  # another task made the same name meanwhile (409)
                current, self._action = self._converge(current, request)
        else:
            current, self._action = self._converge(current, request)
            mine = self._ours(current) and not self._served(context, current)
            if self._action == "unchanged" and mine:
                # An earlier try of this task instance created it (then its worker died, or
                # it was killed for a retry): carry on with it as our own.
                self.log.info("deployment %s was created by this task: re-attaching", request.name)
                self._action = "created"
        self._publish(context, self.kind, request.name)
        # Survives the deferral (a resumed task keeps its XComs); read back in _finish.
        context["ti"].xcom_push(key=_XCOM_ACTION, value=self._action)
        if not self.wait_for_ready:
            self._remember_served(context, request.name)  # handed over: it is the user's now
            self._record_lineage(current)
            return self._result(request.name)
        if self._kills_delete and self._ours(current) and not self._served(context, current):
            self._kill_marker = self._marker
        event = self._wait(current, request.name, self._deadline())
        return self._finish(context, event)

    # -- ownership ------------------------------------------------------------------------

    def _owner_marker(self, context: Any) -> str:
        from airflow_predibase.operators._idempotency import installation_id, task_key

        return _MARKER.format(key=task_key(context, installation_id(self.log)))

    def _ours(self, deployment: Deployment) -> bool:
        """Created by this task instance (its marker survives worker crashes and retries)."""
        return self._marker in (deployment.description or "")

    def _served(self, context: Any, deployment: Deployment) -> bool:
        """Whether this task instance ever saw `deployment` serve (or handed it over).

        Kept in the task state store (Airflow 3.3), which survives retries and clears.
        Without one, a deployment that serves now counts as having served.
        """
        if self._saw_serve:
            return True
        store = context.get("task_state_store")
        if store is None:
            return bool(deployment.status.is_serving)
        return bool(store.get(_SERVED) == deployment.name)

    def _remember_served(self, context: Any, name: str) -> None:
        self._saw_serve = True
        store = context.get("task_state_store")
        if store is not None:
            store.set(_SERVED, name)

    @property
    def _kills_delete(self) -> bool:
        return bool(self.delete_on_failure and self.cancel_on_kill)

    # -- finding, creating and converging -------------------------------------------------

    def _find(self, name: str) -> Deployment | None:
        try:
            return self.client.get_deployment(name)
        except NotFoundError:
            return None

    def _clear_the_way(self, current: Deployment) -> None:
        """`current` is failed or being deleted: make sure it is gone, to create it afresh."""
        failed = bool(current.status.is_failure)
        if failed and not self._ours(current):
            raise PredibaseInvalidParameter(
                f"deployment {current.name} is {current.status} and this task did not create "
                "it, so it will not delete it: delete it (DeleteDeploymentOperator) or choose "
                "another name"
            )
        self.log.warning(
            "deployment %s is %s: %s",
            current.name,
            current.status,
            "deleting it to create it again" if failed else "waiting until it is gone",
        )
        delete_and_wait(
            self.client,
            current.name,
            poll_interval=self.poll_interval,
            deadline=self._deadline(),
            log=self.log,
            send=failed,
        )

    def _create(self, context: Any, request: DeploymentRequest) -> Deployment:
        """Create it with our marker; the deployment that then holds the name (ours, or
        another task's if it won the race: check `_ours`)."""
        body = request.model_copy(update={"description": _with_marker(request, self._marker)})
        store = context.get("task_state_store")
        if store is not None:
            store.delete(_SERVED)  # a new deployment has not served yet
        error: PredibaseError | None = None
        for _attempt in range(2):
            try:
                return self.client.create_deployment(body)
            except BadRequestError as rejected:
                hardware = _hardware_rejection(self.task_id, body, rejected)
                if hardware is None:
                    raise
                raise hardware from rejected
            except ConflictError as conflict:
                self.log.info("deployment %s already exists (%s): reading it", body.name, conflict)
                error = conflict
                found = self._find(body.name)
            except OutcomeUnknownError as unknown:
                self.log.warning("create outcome unknown (%s): looking for %s", unknown, body.name)
                error = unknown
                found = self._look_for(body.name)
            if found is not None:
                return found
            self.log.info("deployment %s does not exist: creating it again", body.name)
        assert error is not None
        raise error

    def _look_for(self, name: str) -> Deployment | None:
        """The deployment a create whose answer was lost made, if it shows within the looks."""
        for pause in LOST_CREATE_LOOKS:
            time.sleep(pause)
            found = self._find(name)
            if found is not None:
                return found
        return None

    def _converge(self, current: Deployment, request: DeploymentRequest) -> tuple[Deployment, str]:
        """Update `current` to what `request` asks for; the accelerator and base model are fixed."""
        from airflow_predibase.client.models import DeploymentConfig, DeploymentUpdateRequest

        # The token is write-only, and a setting this platform build does not report cannot
        # be compared: neither alone makes an update.
        reported = current.model_fields_set | set(current.model_extra or {})
        unseen = set(DeploymentConfig.model_fields) - _ALWAYS_REPORTED - reported
        wanted = DeploymentConfig.model_validate(
            request.model_dump(exclude={"name", "hf_token", *unseen})
        )
        # Ownership markers are not the user's description: compare without them.
        diff = current.model_copy(
            update={"description": _without_markers(current.description)}
        ).differs_from(wanted)
        if current.base_model != request.base_model:
            diff["base_model"] = (current.base_model, request.base_model)
        fixed = sorted(set(_FIXED) & set(diff))
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
        if "description" in changes:  # keep whoever owns it its owner
            markers = _MARKER_RE.findall(current.description or "")
            changes["description"] = " ".join([changes["description"], *markers])
        if request.hf_token is not None:  # sent with every update (never compared or logged)
            changes["hf_token"] = request.hf_token.get_secret_value()
        return self.client.update_deployment(request.name, DeploymentUpdateRequest(**changes)), (
            "updated"
        )

    # -- how the task ends ----------------------------------------------------------------

    def _finish(self, context: Any, event: JobEvent) -> Any:
        if not hasattr(self, "_action"):  # resumed after deferral: a fresh operator object
            ti = context["ti"]
            self._action = ti.xcom_pull(task_ids=ti.task_id, key=_XCOM_ACTION)
        return super()._finish(context, event)

    @contextlib.contextmanager
    def _cleanup_when_over(self, context: Any, name: str) -> Iterator[None]:
        """On an error that ends the task for good, delete what this task instance created
        and never saw serve: a teardown does not run when its setup failed."""
        from airflow.providers.common.compat.sdk import TaskDeferred

        try:
            yield
        except BaseException as error:
            if not isinstance(error, TaskDeferred) and self._over_for_good(context, error):
                try:
                    self._clean_up(context, name, reason=type(error).__name__)
                except PredibaseError as cleanup_error:
                    # The original error decides how the task ends (retried or not).
                    self.log.warning("could not clean up deployment %s: %s", name, cleanup_error)
            raise

    def _over_for_good(self, context: Any, error: BaseException) -> bool:
        if isinstance(error, AirflowFailException):  # not retried: timeouts, bad parameters
            return True
        if isinstance(error, PredibaseJobFailed) and error.remote_status in ("failed", "stopped"):
            return True  # broken: a retry would delete it and create it again anyway
        return _is_last_try(context["ti"])

    def _clean_up(self, context: Any, name: str, *, reason: str) -> None:
        """Delete `name` if this task instance created it and never saw it serve."""
        if not self.delete_on_failure or self._cleaned_up:
            return
        self._cleaned_up = True
        if not hasattr(self, "_marker"):
            self._marker = self._owner_marker(context)
        current = self._find(name)
        if current is None:
            return
        if not self._ours(current):
            self.log.info("deployment %s was not created by this task: leaving it", name)
            return
        if self._served(context, current):
            self.log.info("deployment %s has served: leaving it (%s)", name, reason)
            return
        self.log.warning("deleting deployment %s, which never served (%s)", name, reason)
        self.log.info("%s", lifetime_report(current, self.hourly_rate))
        with contextlib.suppress(NotFoundError, ConflictError):  # gone, or already going
            self.client.delete_deployment(name)

    def on_kill(self) -> None:
        """Blocking mode: the task is killed. A kill that a retry follows leaves the
        deployment for the retry to re-attach; one that ends the task deletes it if this
        task created it and never saw it serve."""
        name, ti = self._active_id, self._ti
        if not (name and ti is not None and self._kills_delete):
            return
        runs_again = self._task_runs_again()
        if runs_again:
            self.log.info("task will run again (%s): leaving deployment %s", runs_again, name)
            return
        try:
            self._clean_up(self._context, name, reason="killed")
        except PredibaseError as error:
            self.log.warning("could not delete deployment %s on kill: %s", name, error)

    def defer(self, *, trigger: Any, method_name: str, **kwargs: Any) -> Any:
        # A deferred kill happens in the triggerer: tell the trigger what makes it ours.
        from airflow_predibase.triggers.base import DeploymentTrigger

        if isinstance(trigger, DeploymentTrigger):
            trigger.owner_marker = self._kill_marker
        return super().defer(trigger=trigger, method_name=method_name, **kwargs)

    def _result(self, name: str) -> dict[str, Any]:
        try:
            serving_url: str | None = self.client.deployment_url(name)
        except ValueError as error:  # no tenant ID on the connection
            self.log.warning("no serving URL: %s", error)
            serving_url = None
        return {"name": name, "serving_url": serving_url, "action": getattr(self, "_action", None)}

    def _on_success(self, context: Any, event: JobEvent) -> dict[str, Any]:
        self.log.info("deployment %s serves (%s)", event.resource_id, event.remote_status)
        self._remember_served(context, event.resource_id)
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


def _with_marker(request: DeploymentRequest, marker: str) -> str:
    return f"{request.description} {marker}" if request.description else marker


def _without_markers(description: str | None) -> str | None:
    if description is None:
        return None
    return " ".join(_MARKER_RE.sub("", description).split(" ")).strip() or None


def _is_last_try(ti: Any) -> bool:
    """No retry follows a failure of this try (Airflow retries while try_number <= max_tries)."""
    max_tries = int(getattr(ti, "max_tries", 0) or 0)
    return not (max_tries and int(getattr(ti, "try_number", 1) or 1) <= max_tries)


def _hardware_rejection(
    task_id: str, request: DeploymentRequest, error: BadRequestError
) -> PredibaseInvalidParameter | None:
    """The platform refused the accelerator or SKU asked for: an error naming the field and
    the valid IDs the server reports (None if the 400 is about something else)."""
    message = str(error.message or error)
    sku = request.compute_spec.requests.inference.sku if request.compute_spec else None
    for field, value in (("accelerator", request.accelerator), ("compute_spec.sku", sku)):
        if value is None or value not in message:
            continue
        field = "compute_spec.requests.inference.sku" if field == "compute_spec.sku" else field
        choices = _server_choices(message)
        valid = f"; valid choices (as the platform reports them): {choices}" if choices else ""
        return PredibaseInvalidParameter(
            f"DeployOperator {task_id}: {field}={value!r} is not offered by the platform"
            f"{valid} (the platform said: {message})"
        )
    return None


def _server_choices(message: str) -> str | None:
    """The list after the last "valid ...:" in a server message, e.g. the emulator's
    "unknown accelerator 'x'; valid accelerators: a, b"."""
    found = re.search(r"valid[^:]*:\s*(.+)$", message, flags=re.IGNORECASE | re.DOTALL)
    return found.group(1).strip().rstrip(".") if found else None
