"""FinetuneOperator: train a new adapter version, exactly once per task instance."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import AirflowException
from pydantic import ValidationError

from airflow_predibase.assets import adapter_asset, adapter_event_extra
from airflow_predibase.client.errors import (
    ConflictError,
    NotFoundError,
    OutcomeUnknownError,
    PredibaseError,
    ResponseValidationError,
)
from airflow_predibase.exceptions import PredibaseInvalidParameter, PredibaseJobFailed
from airflow_predibase.kinds import FINETUNING_JOB
from airflow_predibase.operators._base import (
    LOST_CREATE_WINDOW,
    PredibaseBaseOperator,
    check_choice,
    coerce_mapping,
    fail_fast_on_rejection,
    is_templated,
    lost_create_window_seconds,
)
from airflow_predibase.operators._settings import (
    AirflowSecret,
    explain,
    parse_secrets,
    prepare_reward_fns,
    resolve_reward_fns,
)
from airflow_predibase.operators._validation import check_finite, check_name
from airflow_predibase.waiting.events import JobEvent

if TYPE_CHECKING:
    from airflow_predibase.client import PredibaseClient
    from airflow_predibase.client.models import FinetuningJob, FinetuningJobRequest
    from airflow_predibase.client.models.training import TrainingSummary
    from airflow_predibase.lineage import FinetuneFacts

ADAPTER_TYPES = ("lora", "turbo_lora", "turbo")
TASKS = ("sft", "continued_pretraining", "grpo", "classification")
#: Fields set by the operator's own parameters, not through `hyperparameters`.
_RESERVED = frozenset(
    {
        "base_model",
        "dataset",
        "repo",
        "adapter_type",
        "task",
        "description",
        "compute_spec",
        "reward_fns",
        "secrets",
    }
)
#: Stands in for a reward function named by an import path when the request is checked
#: before the task runs (the path is imported on the worker): `def reward(a, b, c): ...`.
_UNIMPORTED = "ZGVmIHJld2FyZChhLCBiLCBjKToKICAgIHJldHVybiAwLjAK"
#: XCom keys: the training summary, and the cost estimate kept between create and success.
SUMMARY_XCOM = "training_summary"
ESTIMATE_XCOM = "cost_estimate"
#: Seconds to read a finished job's metrics stream at most.
METRICS_BUDGET = 30.0


class PredibaseCostGuardFailed(PredibaseInvalidParameter):
    """`max_cost` refused the job before it was created: its estimate is over budget, or
    the platform gave none. Not retried: the same settings would be refused again."""


def _max_cost(value: Any) -> float | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise ValueError(f"max_cost must be a number, got {value!r}")
    try:
        cost = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"max_cost must be a number, got {value!r}") from None
    if not math.isfinite(cost) or cost <= 0:
        raise ValueError(f"max_cost must be a positive, finite number, got {value!r}")
    return cost


class FinetuneOperator(PredibaseBaseOperator):
    """Fine-tune an adapter on a base model and return its ID, ``<repo>/<version>``.

    The repository is created if it does not exist. The job's console URL and ID are logged
    and pushed to XCom (``job_id``) the moment the job exists; status changes and training
    progress (step, epoch, loss) are logged while waiting. A retry, a worker crash or a lost
    create response re-attaches to the job already started for this task instance instead
    of starting a second one (see docs/idempotency.md). On success the operator emits
    ``adapter_asset(repo)`` with the adapter ID and the training summary in the event's
    extra, pushes the summary (:class:`~airflow_predibase.client.models.training.
    TrainingSummary`: losses, best checkpoint, steps, epochs, tokens, queue and training
    time, cost) to XCom as ``training_summary``, and logs the training loss as a sparkline.

    :param base_model: base model to train on (must be listed by Predibase).
    :param dataset: name of a connected dataset.
    :param repo: adapter repository receiving the new version.
    :param adapter_type: ``lora``, ``turbo_lora`` or ``turbo``.
    :param task: ``sft``, ``continued_pretraining``, ``grpo`` or ``classification``.
    :param hyperparameters: the training settings of the SDK's ``FinetuningConfig`` and
        its task configs, under the SDK's names (a mapping, or JSON from a template):
        ``epochs``, ``train_steps``, ``learning_rate``, ``rank``, ``target_modules``,
        ``lora_alpha``, ``lora_dropout``, ``apply_chat_template``,
        ``enable_early_stopping``, ``lr_scheduler``, ``optimizer``, ``warmup_ratio``,
        ``effective_batch_size``; for GRPO also ``beta``, ``num_generations`` and
        ``sampling_params``. Checked against ``FinetuningJobRequest``; a bad key or value
        is named in the error.
    :param continue_from_version: resume training from this adapter version, ``repo/N``
        (also accepted in ``hyperparameters``).
    :param compute_spec: where and on what to train, the SDK's ``TrainingComputeSpec``:
        ``{"requests": {"trainer": {"sku": "a100_80gb_100"}}, "region": ...}``. A SKU the
        platform does not offer fails the task with the SKUs it reports.
    :param reward_fns: GRPO reward functions: a list of functions or import paths
        (``"my_pkg.rewards:format_reward"``), a mapping name -> function or import path, or
        ``{"functions": ..., "runtime": {"packages": [...]}}``. A function takes
        ``(prompt, completion, example)`` and is sent as its source, as the SDK sends it;
        an import path is imported on the worker when the task runs.
    :param secrets: GRPO secrets the reward functions read, name ->
        :class:`~airflow_predibase.operators.AirflowSecret` (a connection or a Variable,
        read when the task runs; never a literal or a template).
    :param description: free text for the job; the idempotency marker is appended to it.
    :param rerun_on_clear: when a user clears this task after its job completed, start a
        new job (True, default) or reuse the completed one (False). A retry never starts a
        second job for one that completed.
    :param lost_create_window: seconds (or a timedelta) to keep looking for the job when
        the answer to its create request is lost, before sending the request again
        (default 120). A job the platform commits later than this can be started twice
        (see docs/idempotency.md).
    :param emit_asset: emit the adapter repository Asset (needs a non-templated ``repo``).
    :param max_cost: a budget, in the currency of the platform's cost estimate (US dollars:
        the SDK prints it with ``$``). Before the job is created its estimate is asked
        (``GET /v2/finetuning/jobs/cost-estimate``) and logged; a job estimated above
        ``max_cost``, or whose cost the platform cannot estimate, is never created and the
        task fails with ``PredibaseCostGuardFailed`` (not retried). Only a create is
        guarded: a retry that re-attaches to its running job does not ask again. ``None``
        (default): the estimate is only logged, where the platform gives one.
    :param wait_for_completion: wait for the job (True, default). With False, start it
        (exactly once, as always) and return its ID at once, also in XCom as ``job_id``,
        for a ``WaitForJobSensor``; no Asset is emitted and no summary is made.
    See :class:`PredibaseBaseOperator` for the connection, waiting and timeout parameters.
    """

    template_fields: Sequence[str] = (
        "base_model",
        "dataset",
        "repo",
        "adapter_type",
        "task",
        "hyperparameters",
        "continue_from_version",
        "compute_spec",
        "reward_fns",
        "description",
    )
    template_fields_renderers = {
        "hyperparameters": "json",
        "compute_spec": "json",
        "reward_fns": "json",
    }
    kind = FINETUNING_JOB
    _lineage: FinetuneFacts | None = None

    def __init__(
        self,
        *,
        base_model: str,
        dataset: str,
        repo: str,
        adapter_type: str = "lora",
        task: str = "sft",
        hyperparameters: dict[str, Any] | str | None = None,
        continue_from_version: str | None = None,
        compute_spec: dict[str, Any] | str | None = None,
        reward_fns: Any = None,
        secrets: dict[str, AirflowSecret | dict[str, str]] | None = None,
        description: str | None = None,
        rerun_on_clear: bool = True,
        lost_create_window: timedelta | float = LOST_CREATE_WINDOW,
        emit_asset: bool = True,
        max_cost: float | None = None,
        wait_for_completion: bool = True,
        **kwargs: Any,
    ) -> None:
        check_name("repo", repo)
        check_name("dataset", dataset)
        # Without waiting there is no adapter yet: nothing to announce on success.
        if emit_asset and wait_for_completion and repo and not is_templated(repo):
            kwargs["outlets"] = [*(kwargs.get("outlets") or []), adapter_asset(repo)]
        super().__init__(**kwargs)
        check_choice("adapter_type", adapter_type, ADAPTER_TYPES)
        check_choice("task", task, TASKS)
        if isinstance(hyperparameters, dict):
            self._check_hyperparameter_names(hyperparameters)
            check_finite("hyperparameters", hyperparameters)
        self.base_model = base_model
        self.dataset = dataset
        self.repo = repo
        self.adapter_type = adapter_type
        self.task = task
        self.hyperparameters = hyperparameters
        self.continue_from_version = continue_from_version
        self.compute_spec = compute_spec
        try:
            # Functions are encoded now: the operator holds JSON only (templates, DAG
            # serialization); import paths are imported on the worker.
            self.reward_fns = prepare_reward_fns(reward_fns)
            # Not a template field: references only, resolved on the worker.
            self.secrets = parse_secrets(secrets)
        except ValueError as error:
            raise ValueError(f"FinetuneOperator {self.task_id}: {error}") from None
        self.description = description
        self.rerun_on_clear = rerun_on_clear
        self.lost_create_window = lost_create_window_seconds(lost_create_window)
        self.emit_asset = emit_asset and wait_for_completion
        self.max_cost = _max_cost(max_cost)
        self.wait_for_completion = wait_for_completion
        if not any(is_templated(str(getattr(self, f))) for f in self.template_fields):
            try:  # every literal setting fails when the DAG is parsed, not when it runs
                self._build(resolve=False)
            except PredibaseInvalidParameter as error:
                raise ValueError(str(error)) from None

    @staticmethod
    def _check_hyperparameter_names(hyperparameters: dict[str, Any]) -> None:
        from airflow_predibase.client.models import FinetuningJobRequest

        valid = sorted(set(FinetuningJobRequest.model_fields) - _RESERVED)
        own = sorted(set(hyperparameters) & (_RESERVED - {"description"}))
        if own:
            raise ValueError(
                f"hyperparameters sets {', '.join(own)}: pass "
                f"{' and '.join(f'{k}=' for k in own)} to FinetuneOperator instead"
            )
        unknown = sorted(set(hyperparameters) - set(valid))
        if unknown:
            raise ValueError(
                f"hyperparameters has unknown keys {unknown}; valid keys: {', '.join(valid)}"
            )

    def _request(self) -> FinetuningJobRequest:
        """The job request from the rendered fields, secrets read and import paths imported
        (on the worker, when the task runs)."""
        return self._build(resolve=True)

    def _build(self, *, resolve: bool) -> FinetuningJobRequest:
        """The validated job request. Without `resolve` (when the DAG is parsed, or for
        lineage) secrets and reward functions named by import path are placeholders."""
        from airflow_predibase.client.models import FinetuningJobRequest

        try:
            check_choice("adapter_type", self.adapter_type, ADAPTER_TYPES)
            check_choice("task", self.task, TASKS)
            check_name("repo", self.repo)
            check_name("dataset", self.dataset)
            # A copy: the operator's own field is never changed.
            hyperparameters = dict(coerce_mapping(self.hyperparameters, "hyperparameters"))
            self._check_hyperparameter_names(hyperparameters)
            check_finite("hyperparameters", hyperparameters)
            if self.continue_from_version not in (None, ""):
                if hyperparameters.get("continue_from_version") not in (None, ""):
                    raise ValueError(
                        "continue_from_version is given twice: as an argument and in "
                        "hyperparameters; keep one"
                    )
                hyperparameters["continue_from_version"] = self.continue_from_version
            compute_spec = coerce_mapping(self.compute_spec, "compute_spec") or None
            return FinetuningJobRequest(
                base_model=self.base_model,
                dataset=self.dataset,
                repo=self.repo,
                adapter_type=self.adapter_type,  # type: ignore[arg-type]
                task=self.task,  # type: ignore[arg-type]
                description=self.description,
                compute_spec=compute_spec,  # type: ignore[arg-type]
                reward_fns=self._reward_fns(resolve),  # type: ignore[arg-type]
                secrets=self._secrets(resolve),  # type: ignore[arg-type]
                **hyperparameters,
            )
        except ValidationError as error:
            raise PredibaseInvalidParameter(
                f"FinetuneOperator {self.task_id}: {explain(error)}"
            ) from None
        except ValueError as error:
            raise PredibaseInvalidParameter(f"FinetuneOperator {self.task_id}: {error}") from None

    def _reward_fns(self, resolve: bool) -> Any:
        if resolve:
            return resolve_reward_fns(self.reward_fns)
        prepared = prepare_reward_fns(self.reward_fns)
        if prepared is None:
            return None
        functions = prepared.get("functions", prepared)
        placeholders = {
            name: {"encoded_fn": _UNIMPORTED} if isinstance(fn, str) else fn
            for name, fn in functions.items()
        }
        runtime = {"runtime": prepared["runtime"]} if "runtime" in prepared else {}
        return {"functions": placeholders, **runtime}

    def _secrets(self, resolve: bool) -> dict[str, str] | None:
        if self.secrets is None:
            return None
        if not resolve:
            return dict.fromkeys(self.secrets, "<secret>")
        return {name: ref.resolve(f"secrets.{name}") for name, ref in self.secrets.items()}

    def _ensure_repo(self, client: PredibaseClient, repo: str) -> None:
        from airflow_predibase.client.models import RepoRequest

        try:
            client.get_repo(repo)
        except NotFoundError:
            self.log.info("creating adapter repository %s", repo)
            # A mapped sibling may create it at the same moment.
            with contextlib.suppress(ConflictError):
                client.create_repo(RepoRequest(name=repo, description="Created by Airflow"))

    @fail_fast_on_rejection
    def execute(self, context: Any) -> Any:
        request = self._request()
        client = self.client

        def create(text: str) -> FinetuningJob:
            # Only a create is guarded (and the repo made): a retry that re-attaches to its
            # job never asks for an estimate, so it cannot fail on budget once the job exists.
            self._check_budget(context, client, request)
            self._ensure_repo(client, self.repo)
            return client.create_finetuning_job(request.model_copy(update={"description": text}))

        return self._run_job(
            context,
            list_jobs=client.list_finetuning_jobs,
            get_job=client.get_finetuning_job,
            create=create,
            request=request,
            rerun_on_clear=self.rerun_on_clear,
            lost_create_window=self.lost_create_window,
            wait=self.wait_for_completion,
        )

    def _check_budget(
        self, context: Any, client: PredibaseClient, request: FinetuningJobRequest
    ) -> None:
        """Ask the platform's estimate and log it; refuse a job over `max_cost`."""
        try:
            estimate = client.estimate_finetuning_cost(request)
        except PredibaseError as error:
            if self.max_cost is None:
                self.log.info("cost estimate: skipped, the request failed (%s)", error)
                return
            if isinstance(error, (OutcomeUnknownError, ResponseValidationError)):
                # Not the create's own outcome: never let it pass for a lost create answer.
                raise AirflowException(
                    f"FinetuneOperator {self.task_id}: the cost estimate max_cost needs "
                    f"failed: {error}"
                ) from error
            raise
        cost = None if estimate is None else estimate.cost
        if cost is None:
            if self.max_cost is not None:
                raise PredibaseCostGuardFailed(
                    f"FinetuneOperator {self.task_id}: max_cost={self.max_cost:g} is set, but "
                    "the platform gave no cost estimate for this job (this server has no "
                    "/finetuning/jobs/cost-estimate, or it could not estimate): the job was "
                    "not created. Remove max_cost to train without a budget."
                )
            self.log.info("cost estimate: skipped, the platform gives none for this job")
            return
        budget = "" if self.max_cost is None else f" (max_cost ${self.max_cost:.2f})"
        self.log.info(
            "estimated cost: $%.2f USD, estimated duration %s%s",
            cost,
            estimate.estimated_duration if estimate else None,
            budget,
        )
        context["ti"].xcom_push(key=ESTIMATE_XCOM, value=cost)
        if self.max_cost is not None and cost > self.max_cost:
            raise PredibaseCostGuardFailed(
                f"FinetuneOperator {self.task_id}: the estimated cost ${cost:.2f} is over "
                f"max_cost ${self.max_cost:.2f}: the job was not created"
            )

    def _adapter_id(self, job: FinetuningJob) -> str:
        if job.adapter_id:
            return job.adapter_id
        # Older platform builds do not put the version on the job: find it in the repo.
        repo = self.client.get_repo(job.repo or self.repo)
        for version in repo.versions:
            if version.finetuning_job == job.id:
                return f"{repo.name}/{version.version}"

        raise PredibaseJobFailed(
            f"job {job.id} completed but no adapter version in {repo.name} points to it",
            resource_id=job.id,
            remote_status=str(job.status),
        )

    def _on_success(self, context: Any, event: JobEvent) -> str:
        from airflow_predibase.client.models import FinetuningJob
        from airflow_predibase.lineage import FinetuneFacts

        job = FinetuningJob.model_validate(event.resource or {"id": event.resource_id})
        self._check_own(job, event)
        adapter_id = self._adapter_id(job)
        # Lineage records settings, never secrets nor function sources.
        settings = self._build(resolve=False).model_copy(
            update={"secrets": None, "reward_fns": None}
        )
        self._lineage = FinetuneFacts.of(job, adapter_id, settings)
        context["ti"].xcom_push(key="job_id", value=job.id)
        self.log.info("adapter %s is ready (job %s)", adapter_id, job.id)
        summary = self._summary(context, job, adapter_id)
        context["ti"].xcom_push(key=SUMMARY_XCOM, value=summary.model_dump(mode="json"))
        if self.emit_asset and not is_templated(self.repo):
            context["outlet_events"][adapter_asset(self.repo)].extra.update(
                adapter_event_extra(adapter_id, job.id, job.base_model, summary)
            )
        return adapter_id

    def _summary(self, context: Any, job: FinetuningJob, adapter_id: str) -> TrainingSummary:
        """The job's training summary from the platform's records, logged with a sparkline.
        A record that cannot be read leaves its fields None: the adapter is trained."""
        from airflow_predibase.client.models.training import FinetuningCostEstimate, summarize

        client = self.client
        timeline = metrics = None
        try:
            timeline = client.get_finetuning_timeline(job.id)
        except PredibaseError as error:
            self.log.warning("could not read the timeline of job %s: %s", job.id, error)
        try:
            metrics = client.read_finetuning_metrics(job.id, budget=METRICS_BUDGET)
        except PredibaseError as error:
            self.log.warning("could not read the metrics of job %s: %s", job.id, error)
        ti = context["ti"]
        cost = ti.xcom_pull(task_ids=ti.task_id, key=ESTIMATE_XCOM)
        estimate = None
        if isinstance(cost, (int, float)):
            estimate = FinetuningCostEstimate(estimated_cost=cost)
        summary = summarize(
            job, adapter_id=adapter_id, timeline=timeline, metrics=metrics or (), estimate=estimate
        )
        self.log.info("%s", training_report(summary))
        return summary

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        """OpenLineage: the dataset -> the adapter version, with the job's settings as the
        ``predibase_finetuning`` run facet (docs/lineage.md)."""
        from airflow_predibase.lineage import build

        return build(self._lineage, self.hook.get_settings)


def _number(value: float | None, unit: str = "") -> str:
    return "?" if value is None else f"{value:.4g}{unit}"


def training_report(summary: TrainingSummary) -> str:
    """One compact log line: the loss sparkline (where the platform reports a curve) and
    the summary's main figures."""
    if summary.loss_sparkline:
        head = (
            f"training loss {summary.loss_sparkline} "
            f"{_number(summary.final_train_loss)} final, {_number(summary.best_train_loss)} best"
        )
    else:
        head = (
            f"training loss {_number(summary.final_train_loss)} final (no loss curve: no "
            "metrics stream could be read)"
        )
    parts = [head]
    if summary.best_validation_loss is not None:
        where = (
            ""
            if summary.best_checkpoint is None
            else f" at checkpoint {summary.best_checkpoint} (step {summary.best_checkpoint_step})"
        )
        parts.append(f"best validation loss {_number(summary.best_validation_loss)}{where}")
    elif summary.final_validation_loss is not None:
        parts.append(f"validation loss {_number(summary.final_validation_loss)}")
    parts.append(f"{summary.steps if summary.steps is not None else '?'} steps")
    if summary.epochs is not None:
        parts.append(f"{summary.epochs:g} epochs")
    if summary.tokens is not None:
        parts.append(f"{summary.tokens} tokens")
    parts.append(f"queued {_number(summary.queue_seconds, ' s')}")
    parts.append(f"trained {_number(summary.wall_seconds, ' s')}")
    if summary.estimated_cost is not None:
        parts.append(f"estimated ${summary.estimated_cost:.2f}")
    if summary.cost is not None:
        parts.append(f"cost ${summary.cost:.2f}")
    return "; ".join(parts)
