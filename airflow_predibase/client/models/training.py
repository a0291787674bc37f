"""What a fine-tuning job reports about its training: the cost estimate asked before it is
created, its timeline, its metrics, and the summary the operator returns.

Where each comes from (read from the official SDK, `predibase` 2025.10.3):

- `GET /v2/finetuning/jobs/cost-estimate` (a GET with a JSON body) ->
  `{estimatedCost, estimatedDuration}`; the SDK prints the cost as US dollars
  (`Estimated cost: $1.23`). Production only; the seed spec has no such route.
- `GET /v2/finetuning/jobs/{uuid}/timeline` -> `{<status>: {startedAt}}`. Production only.
- the websocket `/v2/finetuning/jobs/{uuid}/metrics/stream`: one message per checkpoint,
  `{data: {steps, epoch, train_metrics_loss, validation_metrics_loss,
  best_validation_metrics_loss, best_eval_metric_checkpoint_number, total_tokens_used, ...},
  meta: {is_completed, ...}}`. Production only: validation loss, the best checkpoint and
  tokens exist nowhere else.
- the job itself (both dialects): created, started and completed times, and (seed spec)
  `progress` with the last step, epoch and training loss.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from datetime import datetime
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from airflow_predibase.client.models._base import WireModel
from airflow_predibase.client.models._wire_shapes import WireShape

#: The currency the platform's cost estimate is in (the SDK prints it with `$`).
COST_CURRENCY = "USD"
_BLOCKS = "▁▂▃▄▅▆▇█"
#: Points a sparkline shows at most (longer curves are resampled).
SPARKLINE_WIDTH = 40


class FinetuningCostEstimate(WireModel):
    """The platform's estimate for a fine-tuning job, asked before the job is created."""

    wire_shape: ClassVar[WireShape] = WireShape()

    estimated_cost: float | None = Field(
        default=None,
        description="Estimated cost in US dollars (the SDK prints `$`); a value <= 0 means "
        "the platform could not estimate it.",
    )
    estimated_duration: Any = Field(
        default=None, description="Estimated training time, as the platform words it."
    )

    @property
    def cost(self) -> float | None:
        """The estimate, or None when the platform gave none (missing, or not positive, as
        the SDK treats it)."""
        value = self.estimated_cost
        if value is None or not math.isfinite(value) or value <= 0:
            return None
        return value


class FinetuningTimeline(BaseModel):
    """When each status of a job began (production's `.../timeline`)."""

    model_config = ConfigDict(extra="allow")

    started: dict[str, str | None] = Field(
        default_factory=dict, description="status -> ISO 8601 time that status began."
    )

    @classmethod
    def from_wire(cls, body: Any) -> FinetuningTimeline:
        if isinstance(body, dict) and body.keys() == {"data"} and isinstance(body["data"], dict):
            body = body["data"]
        started: dict[str, str | None] = {}
        if isinstance(body, dict):
            for status, phase in body.items():
                if isinstance(phase, dict):
                    at = phase.get("startedAt", phase.get("started_at"))
                    started[str(status)] = at if isinstance(at, str) else None
        return cls(started=started)


class TrainingMetrics(WireModel):
    """One message of production's metrics stream (`data`; the SDK's
    `_FinetuningMetricsData`). Every field may be missing."""

    steps: int | None = Field(default=None, description="Steps trained at this checkpoint.")
    checkpoint_number: int | None = Field(default=None, description="The checkpoint.")
    epoch: int | None = Field(default=None, description="Epoch of this checkpoint.")
    train_metrics_loss: float | None = Field(default=None, description="Training loss.")
    validation_metrics_loss: float | None = Field(default=None, description="Validation loss.")
    best_train_metrics_loss: float | None = Field(default=None, description="Lowest train loss.")
    best_validation_metrics_loss: float | None = Field(
        default=None, description="Lowest validation loss so far."
    )
    best_eval_metric_checkpoint_number: int | None = Field(
        default=None, description="Checkpoint with the lowest validation loss."
    )
    best_eval_metric_steps: int | None = Field(default=None, description="Its step.")
    best_eval_metric_epoch: int | None = Field(default=None, description="Its epoch.")
    total_tokens_used: int | None = Field(default=None, description="Tokens trained on so far.")
    is_completed: bool = Field(default=False, description="The stream's last message.")
    total_steps: int | None = Field(default=None, description="Steps planned (`meta`).")

    @classmethod
    def from_message(cls, message: Any) -> TrainingMetrics:
        if not isinstance(message, dict):
            return cls()
        data = message.get("data")
        meta = message.get("meta")
        data = data if isinstance(data, dict) else {}
        meta = meta if isinstance(meta, dict) else {}
        return cls.model_validate(
            {
                **data,
                "is_completed": bool(meta.get("is_completed")),
                "total_steps": meta.get("total_steps"),
            }
        )


class TrainingSummary(BaseModel):
    """What a fine-tuning job did, as `FinetuneOperator` returns it (JSON in XCom).

    Read from the platform's records: the job (both dialects), its timeline and metrics
    stream (production only). A value the platform did not report is None; nothing is
    guessed.
    """

    model_config = ConfigDict(extra="allow")

    adapter_id: str | None = Field(default=None, description="`<repo>/<version>` trained.")
    job_id: str = Field(description="The fine-tuning job.")
    base_model: str | None = Field(default=None, description="The base model.")
    status: str | None = Field(default=None, description="The job's final status.")
    final_train_loss: float | None = Field(default=None, description="Last training loss.")
    best_train_loss: float | None = Field(default=None, description="Lowest training loss.")
    final_validation_loss: float | None = Field(
        default=None, description="Validation loss at the last checkpoint."
    )
    best_validation_loss: float | None = Field(default=None, description="Lowest validation loss.")
    best_checkpoint: int | None = Field(
        default=None, description="Checkpoint with the lowest validation loss."
    )
    best_checkpoint_step: int | None = Field(default=None, description="Its step.")
    steps: int | None = Field(default=None, description="Steps trained.")
    total_steps: int | None = Field(default=None, description="Steps planned.")
    epochs: float | None = Field(default=None, description="Epochs trained.")
    tokens: int | None = Field(default=None, description="Tokens trained on.")
    queue_seconds: float | None = Field(
        default=None, description="From creation (or `queued`) to the start of training."
    )
    wall_seconds: float | None = Field(
        default=None, description="Training time: from the start of training to the end."
    )
    estimated_cost: float | None = Field(
        default=None, description="The platform's estimate before creation, in `currency`."
    )
    cost: float | None = Field(
        default=None, description="The actual cost, when the platform reports one."
    )
    currency: str = Field(default=COST_CURRENCY, description="Currency of the costs.")
    loss_sparkline: str | None = Field(
        default=None, description="Training loss per checkpoint as unicode blocks."
    )
    sources: list[str] = Field(
        default_factory=list, description="The records read: job, timeline, metrics."
    )


def _parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(re.sub(r"Z$", "+00:00", value))
    except ValueError:
        return None


def _seconds(start: str | None, end: str | None) -> float | None:
    a, b = _parse_time(start), _parse_time(end)
    if a is None or b is None or (a.tzinfo is None) != (b.tzinfo is None):
        return None
    return round(max(0.0, (b - a).total_seconds()), 3)


def sparkline(values: Sequence[float], width: int = SPARKLINE_WIDTH) -> str:
    """`values` as unicode blocks, lowest `▁` to highest `█`, at most `width` of them."""
    points = [v for v in values if v is not None and math.isfinite(v)]
    if not points:
        return ""
    if len(points) > width:
        points = [points[round(i * (len(points) - 1) / (width - 1))] for i in range(width)]
    low, high = min(points), max(points)
    span = high - low
    top = len(_BLOCKS) - 1
    return "".join(_BLOCKS[0 if span == 0 else round((v - low) / span * top)] for v in points)


def summarize(
    job: Any,
    *,
    adapter_id: str | None,
    timeline: FinetuningTimeline | None = None,
    metrics: Sequence[TrainingMetrics] = (),
    estimate: FinetuningCostEstimate | None = None,
) -> TrainingSummary:
    """The summary of a finished `job` (a `FinetuningJob`) from whatever records exist."""
    sources = ["job"]
    progress = job.progress
    extra = job.model_extra or {}
    started = timeline.started if timeline else {}
    if timeline is not None:
        sources.append("timeline")
    queued_at = started.get("queued") or job.created_at
    training_at = started.get("training") or job.started_at
    final_status = str(job.status)
    ended_at = started.get(final_status) or job.completed_at
    last = metrics[-1] if metrics else None
    if metrics:
        sources.append("metrics")
    # The stream's last message repeats the last checkpoint: one point per checkpoint.
    by_checkpoint = {
        m.checkpoint_number if m.checkpoint_number else -i: m for i, m in enumerate(metrics)
    }
    unique = list(by_checkpoint.values())
    curve = [m.train_metrics_loss for m in unique if m.train_metrics_loss is not None]
    train_losses = [*curve]
    if progress is not None and progress.train_loss is not None:
        train_losses.append(progress.train_loss)
    validation = [
        m.validation_metrics_loss for m in unique if m.validation_metrics_loss is not None
    ]
    if not validation and progress is not None:
        latest = (progress.model_extra or {}).get("validation_loss")
        if isinstance(latest, (int, float)) and not isinstance(latest, bool):
            validation = [float(latest)]
    cost = extra.get("cost", extra.get("actualCost", extra.get("actual_cost")))
    return TrainingSummary(
        adapter_id=adapter_id,
        job_id=job.id,
        base_model=job.base_model,
        status=final_status,
        final_train_loss=(
            progress.train_loss
            if progress and progress.train_loss is not None
            else (curve[-1] if curve else None)
        ),
        best_train_loss=(
            last.best_train_metrics_loss
            if last and last.best_train_metrics_loss is not None
            else (min(train_losses) if train_losses and unique else None)
        ),
        final_validation_loss=validation[-1] if validation else None,
        best_validation_loss=(
            last.best_validation_metrics_loss
            if last and last.best_validation_metrics_loss is not None
            else (min(validation) if validation and unique else None)
        ),
        best_checkpoint=last.best_eval_metric_checkpoint_number if last else None,
        best_checkpoint_step=last.best_eval_metric_steps if last else None,
        steps=(
            progress.step
            if progress and progress.step is not None
            else (last.steps if last else None)
        ),
        total_steps=(
            progress.total_steps
            if progress and progress.total_steps
            else (last.total_steps if last else None)
        ),
        epochs=(
            progress.epoch
            if progress and progress.epoch is not None
            else (float(last.epoch) if last and last.epoch is not None else None)
        ),
        tokens=last.total_tokens_used if last else None,
        queue_seconds=_seconds(queued_at, training_at),
        wall_seconds=_seconds(training_at, ended_at),
        estimated_cost=estimate.cost if estimate else None,
        cost=float(cost) if isinstance(cost, (int, float)) and not isinstance(cost, bool) else None,
        loss_sparkline=sparkline(curve) or None,
        sources=sources,
    )
