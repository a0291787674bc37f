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
from airflow_predibase.operators._validation import check_finite, check_name
from airflow_predibase.waiting.events import JobEvent

if TYPE_CHECKING:
    from airflow_predibase.client import PredibaseClient
    from airflow_predibase.client.models import FinetuningJob, FinetuningJobRequest
    from airflow_predibase.lineage import FinetuneFacts

ADAPTER_TYPES = ("lora", "turbo_lora", "turbo")
TASKS = ("sft", "continued_pretraining", "grpo")
#: Fields set by the operator's own parameters, not through `hyperparameters`.
_RESERVED = frozenset({"base_model", "dataset", "repo", "adapter_type", "task", "description"})


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
    :param task: ``sft``, ``continued_pretraining`` or ``grpo``.
    :param hyperparameters: passed through: ``epochs``, ``learning_rate``, ``rank``,
        ``train_steps``, ``target_modules``, ``lora_alpha``, ``lora_dropout``,
        ``apply_chat_template``, ``enable_early_stopping``, ``continue_from_version``.
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
        "description",
    )
    template_fields_renderers = {"hyperparameters": "json"}
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
        self.description = description
        self.rerun_on_clear = rerun_on_clear
        self.lost_create_window = lost_create_window_seconds(lost_create_window)
        self.emit_asset = emit_asset

    @staticmethod
    def _check_hyperparameter_names(hyperparameters: dict[str, Any]) -> None:
        from airflow_predibase.client.models import FinetuningJobRequest

        valid = sorted(set(FinetuningJobRequest.model_fields) - _RESERVED)
        unknown = sorted(set(hyperparameters) - set(valid))
        if unknown:
            raise ValueError(
                f"hyperparameters has unknown keys {unknown}; valid keys: {', '.join(valid)}"
            )

    def _request(self) -> FinetuningJobRequest:
        """The validated job request, from the rendered fields."""
        from airflow_predibase.client.models import FinetuningJobRequest

        try:
            check_choice("adapter_type", self.adapter_type, ADAPTER_TYPES)
            check_choice("task", self.task, TASKS)
            check_name("repo", self.repo)
            check_name("dataset", self.dataset)
            hyperparameters = coerce_mapping(self.hyperparameters, "hyperparameters")
            self._check_hyperparameter_names(hyperparameters)
            check_finite("hyperparameters", hyperparameters)
            return FinetuningJobRequest(
                base_model=self.base_model,
                dataset=self.dataset,
                repo=self.repo,
                adapter_type=self.adapter_type,  # type: ignore[arg-type]
                task=self.task,  # type: ignore[arg-type]
                description=self.description,
                **hyperparameters,
            )
        except (ValueError, ValidationError) as error:
            raise PredibaseInvalidParameter(f"FinetuneOperator {self.task_id}: {error}") from None

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
        self._lineage = FinetuneFacts.of(job, adapter_id, self._request())
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
