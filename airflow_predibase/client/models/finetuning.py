"""Fine-tuning jobs: train a LoRA-family adapter on a base model from a connected dataset."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from airflow_predibase.client.models._base import RequestModel, WireModel
from airflow_predibase.client.models.status import FinetuningJobStatus
from airflow_predibase.dataset_files import TASK_COLUMNS as TASK_COLUMNS

AdapterType = Literal["lora", "turbo_lora", "turbo"]
FinetuningTask = Literal["sft", "continued_pretraining", "grpo"]

ADAPTER_TYPES: tuple[str, ...] = ("lora", "turbo_lora", "turbo")
FINETUNING_TASKS: tuple[str, ...] = ("sft", "continued_pretraining", "grpo")


class FinetuningJobRequest(RequestModel):
    """Body of `POST /finetuning/jobs`. Hyperparameters sit flat beside the spec's fields."""

    base_model: str = Field(description="Base model to train on; must be listed by /models.")
    dataset: str = Field(description="Name of a connected dataset.")
    repo: str | None = Field(default=None, description="Repository that receives the version.")
    adapter_type: AdapterType | None = Field(default=None, description="lora, turbo_lora, turbo.")
    task: FinetuningTask | None = Field(
        default=None, description="sft, continued_pretraining or grpo."
    )
    epochs: int | None = Field(default=None, ge=1, description="Passes over the data (3).")
    train_steps: int | None = Field(default=None, ge=1, description="Stop after this many steps.")
    learning_rate: float | None = Field(default=None, gt=0, description="Default 0.0002.")
    rank: int | None = Field(default=None, ge=1, description="LoRA rank (16).")
    target_modules: list[str] | None = Field(default=None, description="Modules to adapt.")
    lora_alpha: int | None = Field(default=None, ge=1, description="LoRA alpha.")
    lora_dropout: float | None = Field(default=None, ge=0, le=1, description="LoRA dropout.")
    apply_chat_template: bool | None = Field(default=None, description="Wrap prompts in it.")
    enable_early_stopping: bool | None = Field(default=None, description="Stop on plateau.")
    continue_from_version: str | None = Field(
        default=None, description="Resume training from this adapter, `repo/N`."
    )
    description: str | None = Field(
        default=None, description="Free text. The provider puts its idempotency marker here."
    )


class TrainingProgress(WireModel):
    """Where a running job is."""

    step: int | None = Field(default=None, description="Steps done.")
    total_steps: int | None = Field(default=None, description="Steps planned.")
    epoch: float | None = Field(default=None, description="Current epoch (may be fractional).")
    train_loss: float | None = Field(default=None, description="Latest training loss.")


class FinetuningJob(WireModel):
    """A fine-tuning job as the platform reports it."""

    id: str = Field(description="Job ID.")
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

    @property
    def adapter_id(self) -> str | None:
        """`<repo>/<version>` once the job has produced a version, else None."""
        if self.repo is None or self.adapter_version is None:
            return None
        return f"{self.repo}/{self.adapter_version}"
