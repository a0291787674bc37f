"""Fine-tuning jobs: `queued` -> `training` (with advancing progress) -> `completed`.

What a job will end as is settled at creation, from its dataset: a dataset without the
columns its task needs still gives a job, which trains briefly and ends `errored` with the
reason, as the platform's preprocessing does. A completed job makes its adapter version
`ready`.
"""

from __future__ import annotations

import math
from typing import Any

from airflow_predibase.client.models import (
    FinetuningJob,
    FinetuningJobRequest,
    FinetuningJobStatus,
)
from airflow_predibase.dataset_files import DatasetFileError, check_rows
from airflow_predibase.emulator.context import Context
from airflow_predibase.emulator.errors import ApiError
from airflow_predibase.emulator.lifecycle import Phase
from airflow_predibase.emulator.resources._base import LifecycleResource
from airflow_predibase.emulator.resources.datasets import Datasets
from airflow_predibase.emulator.resources.repos import Repos
from airflow_predibase.emulator.store import Doc
from airflow_predibase.emulator.tabular import train_rows
from airflow_predibase.emulator.training_curves import Curve, curve
from airflow_predibase.emulator.wire import iso, wire, without_secrets
from airflow_predibase.kinds import FINETUNING_JOB

S = FinetuningJobStatus
#: The request's fields that are the job's own columns; every other field is a setting,
#: kept and shown back as sent (secrets by name only).
_OWN_FIELDS = frozenset({"base_model", "dataset", "repo", "adapter_type", "task", "description"})
SETTINGS: tuple[str, ...] = tuple(
    name for name in FinetuningJobRequest.model_fields if name not in _OWN_FIELDS
)
_BATCH_SIZE = 8
#: A job doomed by its data fails this far into training, as preprocessing would.
_DOOMED_FRACTION = 0.2


def _loss(fraction: float) -> float:
    """A plausible, monotonically falling training loss."""
    return round(0.35 + 2.2 * math.exp(-4.0 * fraction), 4)


def loss_curve(progress: dict[str, Any] | None, limit: int = 200) -> list[tuple[int, float]]:
    """(step, loss) of the training-loss trend at the steps reached so far, at most `limit`
    of them evenly spread, for the console's drawing.

    The noise-free trend: the job's reported `progress.train_loss` and its metrics follow
    the noisy curve of `training_curves` around it. Empty before the first step.
    """
    if not progress or not progress.get("step"):
        return []
    step, total = int(progress["step"]), int(progress["total_steps"])
    count = min(step, limit)
    return [(step * i // count, _loss(step * i // count / total)) for i in range(1, count + 1)]


class FinetuningJobs(LifecycleResource):
    registered = FINETUNING_JOB
    aliases = ("finetuning", "finetuning_jobs")
    state_key = "finetuning_jobs"
    stored_as = "finetuning"
    key_field = "id"

    def __init__(self, ctx: Context, datasets: Datasets, repos: Repos) -> None:
        super().__init__(ctx)
        self.datasets = datasets
        self.repos = repos

    def status_of(self, job_id: str) -> S | None:
        """The status of job `job_id`, or None if there is no such job."""
        doc = self.find(job_id)
        return None if doc is None else S(self.status(doc))

    def plan(self, doc: Doc, status: str) -> list[Phase]:
        profile = self.ctx.profile
        fate = doc["_fate"]["status"]
        if status == S.QUEUED:
            return [(status, profile.finetuning_queued), *self.plan(doc, S.TRAINING.value)]
        if status == S.TRAINING:
            if fate == S.COMPLETED:
                return [(status, profile.finetuning_training), (fate, None)]
            return [(status, profile.finetuning_training * _DOOMED_FRACTION), (fate, None)]
        if status == S.STOPPING:
            return [(status, profile.finetuning_stopping), (S.CANCELED.value, None)]
        return [(status, None)]

    def view(self, doc: Doc) -> dict[str, Any]:
        now = self.ctx.now()
        position = self.ctx.position(doc)
        status = S(position.status)
        marks = self.ctx.marks(doc)
        fields: dict[str, Any] = {
            "id": doc["id"],
            "status": status,
            "base_model": doc["base_model"],
            "repo": doc["repo"],
            "dataset": doc["dataset"],
            "adapter_type": doc["adapter_type"],
            "task": doc["task"],
            "description": doc.get("description"),
            **doc.get("_settings", {}),
            "created_at": iso(doc["created_at"]),
            "started_at": iso(marks.get(S.TRAINING.value)),
            "completed_at": iso(marks.get(status.value)) if status.is_terminal else None,
            "progress": self._progress(doc, status, marks, position.fraction(now)),
        }
        if status == S.COMPLETED:
            fields["adapter_version"] = doc["_version"]
        if status == S.ERRORED:
            fields["error"] = doc.get("_error") or doc["_fate"].get("error") or "training failed"
        return wire(FinetuningJob, fields)

    def _progress(
        self, doc: Doc, status: S, marks: dict[str, float], fraction: float
    ) -> dict[str, Any] | None:
        started = marks.get(S.TRAINING.value)
        if started is None:
            return None
        if status == S.COMPLETED:
            done = 1.0
        elif status == S.TRAINING:
            done = fraction
        else:
            # Frozen where training stopped: at the first status reached after it.
            ended = min((t for t in marks.values() if t > started), default=started)
            done = min(1.0, (ended - started) / self.ctx.profile.finetuning_training)
        total = int(doc["_total_steps"])
        step = int(total * done)
        curve = self.curve(doc)
        reached = curve.reached(step)
        return {
            "step": step,
            "total_steps": total,
            "epoch": round(doc["_epochs"] * done, 3),
            "train_loss": curve.train_loss(step),
            # Beyond the seed's fields (its `progress` allows more): the last evaluation.
            "validation_loss": reached[-1].validation_loss if reached else None,
        }

    def curve(self, doc: Doc) -> Curve:
        """The job's training curve: the same for the same emulator seed, repo and version."""
        key = f"{self.ctx.config.seed}/{doc['repo']}/{doc['_version']}"
        return curve(key, int(doc["_total_steps"]), int(doc["_epochs"]), _BATCH_SIZE)

    def trained_steps(self, job_id: str) -> tuple[dict[str, Any], Doc, int, bool]:
        """The job's view, its stored document, the steps it has trained, and whether it
        is over."""
        view = self.get(job_id)
        progress = view.get("progress") or {}
        status = S(view["status"])
        return view, self.load(job_id), int(progress.get("step") or 0), status.is_terminal

    # -- operations ---------------------------------------------------------------------------

    def create(
        self,
        request: FinetuningJobRequest,
        *,
        task: str | None = None,
        params: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """A new job. `task` overrides the request's; `params` is production's `params`
        object, kept to be shown back as it was sent (secrets by name only)."""
        ctx = self.ctx
        ctx.require_base_model(request.base_model, finetuning=True)
        dataset = self.datasets.connected(request.dataset)
        if not request.repo:
            raise ApiError(400, "field 'repo' is required: the adapter version is created in it")
        repo = self.repos.load(request.repo)
        if request.continue_from_version:
            parent = self.repos.ready_version(request.continue_from_version)
            if parent["base_model"] != request.base_model:
                raise ApiError(
                    400,
                    f"cannot continue from {request.continue_from_version}: it was trained on "
                    f"{parent['base_model']}, not {request.base_model}",
                )
        task = task or request.task or "sft"
        epochs = request.epochs or 3
        table = self.datasets.table(dataset)
        rows = train_rows(table)
        fate: dict[str, Any] = {"status": S.COMPLETED.value}
        try:
            # The same rules the operator's pre-upload check applies: the columns of
            # dataset_files.TASK_COLUMNS, for every task and both dialects.
            check_rows(table.rows, f"dataset {request.dataset!r}", task)
        except DatasetFileError as error:
            fate = {"status": S.ERRORED.value, "error": str(error)}
        scheduled = self.take_failure()
        if scheduled is not None:
            fate = {"status": S.ERRORED.value, "error": scheduled}
        job_id = ctx.new_id()
        knowledge = {"dataset": dataset["name"], "blob": dataset["_blob"], "task": task}
        version = self.repos.reserve_version(repo, job_id, request.base_model, knowledge)
        doc: Doc = {
            "id": job_id,
            "base_model": request.base_model,
            "repo": request.repo,
            "dataset": request.dataset,
            "adapter_type": request.adapter_type or "lora",
            "task": task,
            "description": request.description,
            "created_at": ctx.now(),
            "_settings": without_secrets(
                request.model_dump(mode="json", include=set(SETTINGS), exclude_none=True)
            ),
            "_version": version,
            "_fate": fate,
            "_epochs": epochs,
            "_total_steps": request.train_steps
            or epochs * max(1, math.ceil(len(rows) / _BATCH_SIZE)),
        }
        hardware = request.compute_spec.requests if request.compute_spec else None
        if hardware is not None:
            doc["_accelerator"] = hardware.trainer.sku
        if params is not None:
            doc["_params"] = without_secrets(params)
        ctx.begin(doc, self.plan(doc, S.QUEUED.value))
        self.save(doc)
        return self.view(doc)

    def update_params(
        self, job_id: str, params: dict[str, Any], settings: FinetuningJobRequest
    ) -> dict[str, Any]:
        """Production's `PUT .../{uuid}/config`: new settings for a job not yet training
        (`params` as sent, `settings` the same in the seed's request)."""
        doc = self.load(job_id)
        status = S(self.status(doc))
        if status != S.QUEUED:
            raise ApiError(
                409,
                f"fine-tuning job {job_id!r} is {status}; only a queued job's "
                "config can be changed",
            )
        doc["_params"] = without_secrets(params)
        doc["_settings"] = without_secrets(
            settings.model_dump(mode="json", include=set(SETTINGS), exclude_none=True)
        )
        self.save(doc)
        return self.view(doc)

    def cancel(self, job_id: str) -> dict[str, Any]:
        doc = self.load(job_id)
        status = S(self.status(doc))
        # Cancelling twice, or after the end, changes nothing: on_kill may race completion.
        if not status.is_terminal and not status.is_winding_down:
            self.ctx.begin(doc, self.plan(doc, S.STOPPING.value))
            self.save(doc)
        return self.view(doc)
