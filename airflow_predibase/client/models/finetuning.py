"""Fine-tuning jobs: train a LoRA-family adapter on a base model from a connected dataset."""

from __future__ import annotations

import math
from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from airflow_predibase.client.models._base import RequestModel, WireModel
from airflow_predibase.client.models._wire_shapes import WireShape
from airflow_predibase.client.models.configs import (
    RewardFunctions,
    SamplingParams,
    SecretText,
    TrainingComputeSpec,
)
from airflow_predibase.client.models.status import FinetuningJobStatus
from airflow_predibase.dataset_files import TASK_COLUMNS as TASK_COLUMNS

AdapterType = Literal["lora", "turbo_lora", "turbo"]
FinetuningTask = Literal["sft", "continued_pretraining", "grpo", "classification"]

ADAPTER_TYPES: tuple[str, ...] = ("lora", "turbo_lora", "turbo")
FINETUNING_TASKS: tuple[str, ...] = ("sft", "continued_pretraining", "grpo", "classification")
#: Settings only GRPO takes (the SDK's `GRPOConfig`).
GRPO_FIELDS: tuple[str, ...] = (
    "beta",
    "num_generations",
    "sampling_params",
    "reward_fns",
    "secrets",
)


def _check_finite(value: Any, where: str) -> None:
    """ValueError for an infinite or NaN number anywhere in a free-form setting."""
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"{where}={value!r} is not a finite number")
    if isinstance(value, dict):
        for key, item in value.items():
            _check_finite(item, f"{where}.{key}")
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            _check_finite(item, f"{where}[{index}]")


class FinetuningJobRequest(RequestModel):
    """Body of `POST /finetuning/jobs`: every setting of the SDK's `FinetuningConfig` (and its
    `SFTConfig`, `ContinuedPretrainingConfig`, `GRPOConfig`, `ClassificationConfig`) plus the
    job's own fields, flat, under the SDK's snake_case names.

    On the production wire `JOB_FIELDS` sit at the top level (camelCase) and the rest in
    `params`; `adapter_type` is the SDK's `adapter`.
    """

    model_config = ConfigDict(allow_inf_nan=False)

    #: The job's own fields; everything else is a training parameter.
    JOB_FIELDS: ClassVar[frozenset[str]] = frozenset(
        {"dataset", "repo", "description", "continue_from_version", "compute_spec"}
    )

    base_model: str = Field(description="Base model to train on; must be listed by /models.")
    dataset: str = Field(description="Name of a connected dataset.")
    repo: str | None = Field(default=None, description="Repository that receives the version.")
    adapter_type: AdapterType | None = Field(
        default=None, description="lora, turbo_lora, turbo (the SDK's `adapter`)."
    )
    task: FinetuningTask | None = Field(
        default=None, description="sft, continued_pretraining, grpo or classification."
    )
    epochs: int | None = Field(default=None, ge=1, description="Passes over the data (3).")
    train_steps: int | None = Field(default=None, ge=1, description="Stop after this many steps.")
    learning_rate: float | None = Field(default=None, gt=0, description="Default 0.0002.")
    rank: int | None = Field(default=None, ge=1, description="LoRA rank (16).")
    target_modules: list[Annotated[str, Field(min_length=1)]] | None = Field(
        default=None, min_length=1, description="Modules to adapt."
    )
    lora_alpha: int | None = Field(default=None, ge=1, description="LoRA alpha.")
    lora_dropout: float | None = Field(default=None, ge=0, le=1, description="LoRA dropout.")
    apply_chat_template: bool | None = Field(default=None, description="Wrap prompts in it.")
    enable_early_stopping: bool | None = Field(default=None, description="Stop on plateau.")
    lr_scheduler: dict[str, Any] | None = Field(
        default=None, description="Learning-rate schedule, e.g. {'type': 'cosine'}."
    )
    optimizer: dict[str, Any] | None = Field(
        default=None, description="Optimizer, e.g. {'type': 'adamw_torch'}."
    )
    warmup_ratio: float | None = Field(
        default=None, gt=0, le=1, description="Share of steps spent warming up, in (0, 1]."
    )
    effective_batch_size: int | None = Field(
        default=None, ge=1, description="Examples per optimizer step."
    )
    beta: float | None = Field(default=None, ge=0, description="GRPO: KL penalty coefficient.")
    num_generations: int | None = Field(
        default=None, ge=1, description="GRPO: completions sampled per prompt."
    )
    sampling_params: SamplingParams | None = Field(
        default=None, description="GRPO: how completions are sampled."
    )
    reward_fns: RewardFunctions | None = Field(
        default=None, description="GRPO: reward functions (a list, a mapping, or the config)."
    )
    secrets: dict[Annotated[str, Field(min_length=1)], SecretText] | None = Field(
        default=None, description="GRPO: secrets the reward functions read, by name."
    )
    continue_from_version: str | None = Field(
        default=None, min_length=1, description="Resume training from this adapter, `repo/N`."
    )
    compute_spec: TrainingComputeSpec | None = Field(
        default=None, description="Where and on what to train."
    )
    description: str | None = Field(
        default=None, description="Free text. The provider puts its idempotency marker here."
    )

    @field_validator("reward_fns", mode="before")
    @classmethod
    def _reward_fn_list(cls, value: Any) -> Any:
        # As the SDK: a list of functions is the `functions` of a config without runtime.
        return {"functions": value} if isinstance(value, list | tuple) else value

    @field_validator("lr_scheduler", "optimizer")
    @classmethod
    def _finite_settings(cls, value: dict[str, Any] | None, info: ValidationInfo) -> Any:
        if value is not None:
            _check_finite(value, str(info.field_name))
        return value

    @model_validator(mode="after")
    def _fits_the_task(self) -> FinetuningJobRequest:
        task = self.task or "sft"
        if task != "grpo":
            given = [name for name in GRPO_FIELDS if getattr(self, name) is not None]
            if given:
                raise ValueError(
                    f"{', '.join(given)}: GRPO settings, for task 'grpo' only (task is {task!r})"
                )
        if task == "classification":
            if self.adapter_type in ("turbo", "turbo_lora"):
                raise ValueError(
                    f"adapter_type={self.adapter_type!r} does not apply to task "
                    "'classification'; choose lora"
                )
            if self.apply_chat_template:
                raise ValueError(
                    "apply_chat_template does not apply to task 'classification': apply the "
                    "template to the text before uploading the dataset"
                )
        return self


class TrainingProgress(WireModel):
    """Where a running job is."""

    step: int | None = Field(default=None, description="Steps done.")
    total_steps: int | None = Field(default=None, description="Steps planned.")
    epoch: float | None = Field(default=None, description="Current epoch (may be fractional).")
    train_loss: float | None = Field(default=None, description="Latest training loss.")


class FinetuningJob(WireModel):
    """A fine-tuning job as the platform reports it (seed shape, or production's: `uuid`,
    `targetRepoName`, `targetVersionTag`, `datasetName`, settings nested in `params`)."""

    wire_shape: ClassVar[WireShape] = WireShape(
        renames={
            "target_repo_name": "repo",
            "target_repo": "repo",
            "target_version_tag": "adapter_version",
            "dataset_name": "dataset",
            "adapter": "adapter_type",
            "error_message": "error",
            "last_error": "error",
        },
        paths={
            "accelerator": ("accelerator", "id"),
            "repo": ("repo", "name"),
            "dataset": ("dataset", "name"),
        },
        flatten=("params",),
    )

    id: str = Field(description="Job ID (production's `uuid`).")
    status: FinetuningJobStatus = Field(
        default=FinetuningJobStatus.QUEUED, description="See FinetuningJobStatus."
    )
    base_model: str | None = Field(default=None, description="Base model.")
    repo: str | None = Field(default=None, description="Target repository.")
    dataset: str | None = Field(default=None, description="Training dataset.")
    adapter_type: str | None = Field(default=None, description="Adapter type.")
    task: str | None = Field(default=None, description="Task.")
    description: str | None = Field(default=None, description="As given at creation.")
    created_at: str | None = Field(default=None, description="Creation time, ISO 8601.")
    started_at: str | None = Field(default=None, description="Training start, ISO 8601.")
    completed_at: str | None = Field(default=None, description="End time, ISO 8601.")
    adapter_version: int | None = Field(
        default=None, description="Version produced in `repo`, set once completed."
    )
    error: str | None = Field(default=None, description="Why the job failed, if it did.")
    progress: TrainingProgress | None = Field(default=None, description="Training progress.")
    accelerator: str | None = Field(default=None, description="GPU type it trains on.")

    @property
    def adapter_id(self) -> str | None:
        """`<repo>/<version>` once the job has produced a version, else None."""
        if self.repo is None or self.adapter_version is None:
            return None
        return f"{self.repo}/{self.adapter_version}"
