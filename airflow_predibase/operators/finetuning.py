"""FinetuneOperator: train a new adapter version, exactly once per task instance."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from airflow_predibase.assets import adapter_asset
from airflow_predibase.client.errors import ConflictError, NotFoundError
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


class FinetuneOperator(PredibaseBaseOperator):
    """Fine-tune an adapter on a base model and return its ID, ``<repo>/<version>``.

    The repository is created if it does not exist. The job's console URL and ID are logged
    and pushed to XCom (``job_id``) the moment the job exists; status changes and training
    progress (step, epoch, loss) are logged while waiting. A retry, a worker crash or a lost
    create response re-attaches to the job already started for this task instance instead
    of starting a second one (see docs/idempotency.md). On success the operator emits
    ``adapter_asset(repo)`` with the adapter ID in the event's extra.

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
        **kwargs: Any,
    ) -> None:
        check_name("repo", repo)
        check_name("dataset", dataset)
        if emit_asset and repo and not is_templated(repo):
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
        self.emit_asset = emit_asset
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
        self._ensure_repo(client, self.repo)
        return self._run_job(
            context,
            list_jobs=client.list_finetuning_jobs,
            get_job=client.get_finetuning_job,
            create=lambda text: client.create_finetuning_job(
                request.model_copy(update={"description": text})
            ),
            request=request,
            rerun_on_clear=self.rerun_on_clear,
            lost_create_window=self.lost_create_window,
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
        if self.emit_asset and not is_templated(self.repo):
            context["outlet_events"][adapter_asset(self.repo)].extra.update(
                {"adapter_id": adapter_id, "job_id": job.id, "base_model": job.base_model}
            )
        return adapter_id

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        """OpenLineage: the dataset -> the adapter version, with the job's settings as the
        ``predibase_finetuning`` run facet (docs/lineage.md)."""
        from airflow_predibase.lineage import build

        return build(self._lineage, self.hook.get_settings)
