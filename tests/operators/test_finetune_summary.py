"""FinetuneOperator's training summary against the emulator over real HTTP: what it reads
from the job, its timeline and its metrics stream, in both wait modes and every dialect;
the Asset event's extra; the sparkline in the log."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest

from airflow_predibase.client.models.training import (
    FinetuningTimeline,
    TrainingMetrics,
    TrainingSummary,
    sparkline,
    summarize,
)
from airflow_predibase.operators.finetuning import training_report
from tests.taskkit import finetune_operator as finetune
from tests.taskkit import make_context, run_deferred, upload

ROWS = [{"prompt": f"ticket {i}: where is my parcel?", "completion": "shipping"} for i in range(40)]
BLOCKS = set("▁▂▃▄▅▆▇█")


@pytest.fixture
def dataset(client: Any) -> str:
    upload(client, "tickets", ROWS)
    return "tickets"


@pytest.fixture
def logs(capsys: Any, caplog: Any) -> Any:
    caplog.set_level(logging.INFO)

    def read() -> str:
        captured = capsys.readouterr()
        return captured.out + captured.err + caplog.text

    return read


def run(mode: str, context: dict[str, Any]) -> str:
    if mode == "deferred":
        return str(run_deferred(finetune(deferrable=True), context, resume_on=finetune()))
    return str(finetune().execute(context))


@pytest.mark.parametrize("mode", ["blocking", "deferred"])
def test_the_summary_is_pushed_put_in_the_asset_event_and_drawn_in_the_log(
    emulator: Any, emulator_dialect: str, client: Any, dataset: str, mode: str, logs: Any
):
    context = make_context()
    adapter_id = run(mode, context)

    ti = context["ti"]
    pushed = ti.xcoms["training_summary"]
    json.dumps(pushed)  # plain JSON: it goes through XCom
    summary = TrainingSummary.model_validate(pushed)
    job = client.get_finetuning_job(ti.xcoms["job_id"])
    assert summary.adapter_id == adapter_id
    assert summary.job_id == job.id
    assert summary.status == "completed"
    assert summary.steps == summary.total_steps
    assert summary.steps > 0
    assert summary.final_train_loss is not None
    assert summary.epochs == 3
    if job.progress is not None:  # the seed's job record (production's has no progress)
        assert summary.steps == job.progress.total_steps
        assert summary.final_train_loss == job.progress.train_loss
    assert summary.queue_seconds is not None
    assert summary.queue_seconds > 0
    assert summary.wall_seconds is not None
    assert summary.wall_seconds > 0

    event = context["outlet_events"][next(iter(context["outlet_events"]))]
    assert event.extra["adapter_id"] == adapter_id
    assert event.extra["training"] == summary.model_dump(mode="json", exclude_none=True)

    text = logs()
    if emulator_dialect == "spec":
        # The seed spec has no timeline and no metrics stream: no curve, and no guesses.
        assert summary.sources == ["job"]
        assert summary.best_validation_loss is None
        assert summary.tokens is None
        assert summary.loss_sparkline is None
        assert "no loss curve" in text
        return
    assert summary.sources == ["job", "timeline", "metrics"]
    metrics = client.read_finetuning_metrics(job.id)
    checkpoints = {m.checkpoint_number: m for m in metrics}
    validation = [m.validation_metrics_loss for m in checkpoints.values()]
    assert summary.best_validation_loss == min(validation)
    assert summary.final_validation_loss == validation[-1]
    best = checkpoints[summary.best_checkpoint]
    assert best.validation_metrics_loss == summary.best_validation_loss
    assert summary.best_checkpoint_step == best.steps
    assert summary.tokens
    assert summary.tokens > 0
    last = metrics[-1]
    assert summary.final_train_loss == last.train_metrics_loss
    assert summary.steps == last.steps == last.total_steps
    line = summary.loss_sparkline
    assert line
    assert set(line) <= BLOCKS
    assert len(line) == len(checkpoints)
    assert line[0] == "█", "the training loss falls"
    assert line[-1] in "▁▂", "the training loss falls"
    assert f"training loss {line}" in text
    assert f"best validation loss {summary.best_validation_loss:.4g}" in text


def test_the_emulated_curve_is_realistic_and_the_same_per_seed(
    emulator: Any, emulator_dialect: str, client: Any, dataset: str
):
    if emulator_dialect == "spec":
        pytest.skip("the metrics stream is production's; the seed spec has none")
    context = make_context()
    finetune().execute(context)
    metrics = client.read_finetuning_metrics(context["ti"].xcoms["job_id"])
    checkpoints = list({m.checkpoint_number: m for m in metrics}.values())
    train = [m.train_metrics_loss for m in checkpoints]
    validation = [m.validation_metrics_loss for m in checkpoints]
    assert len(checkpoints) >= 5
    assert train[0] > 2 * train[-1], "training loss falls"
    assert min(validation) < validation[0]
    assert all(v > t for v, t in zip(validation, train, strict=True)), "validation above train"
    assert metrics[-1].is_completed

    # Same emulator seed, repository and version: the same curve.
    from airflow_predibase.emulator.training_curves import curve

    a, b = curve("0/router/1", 75, 3, 8), curve("0/router/1", 75, 3, 8)
    other = curve("1/router/1", 75, 3, 8)
    assert a == b
    assert a.checkpoints != other.checkpoints
    # Noisy, not a smooth formula: the loss goes up now and then on the way down.
    assert any(later > earlier for earlier, later in zip(a.train, a.train[1:], strict=False))


def test_summarize_reads_what_exists_and_guesses_nothing():
    from airflow_predibase.client.models import FinetuningJob

    job = FinetuningJob.model_validate(
        {
            "uuid": "j1",
            "status": "completed",
            "baseModel": "qwen3-8b",
            "createdAt": "2026-01-01T00:00:00Z",
            "startedAt": "2026-01-01T00:00:10Z",
            "completedAt": "2026-01-01T00:01:10Z",
        }
    )
    bare = summarize(job, adapter_id="r/1")
    assert bare.queue_seconds == 10
    assert bare.wall_seconds == 60
    assert bare.final_train_loss is bare.best_validation_loss is bare.cost is None
    timeline = FinetuningTimeline.from_wire(
        {
            "data": {
                "queued": {"startedAt": "2026-01-01T00:00:00Z"},
                "training": {"startedAt": "2026-01-01T00:00:30Z"},
                "completed": {"startedAt": "2026-01-01T00:02:30Z"},
            }
        }
    )
    message = {
        "data": {
            "steps": 10,
            "checkpoint_number": 1,
            "train_metrics_loss": 1.0,
            "validation_metrics_loss": 1.2,
            "best_validation_metrics_loss": 1.2,
            "best_eval_metric_checkpoint_number": 1,
            "total_tokens_used": 99,
        },
        "meta": {"is_completed": True, "total_steps": 10},
    }
    full = summarize(
        job, adapter_id="r/1", timeline=timeline, metrics=[TrainingMetrics.from_message(message)]
    )
    assert full.queue_seconds == 30
    assert full.wall_seconds == 120
    assert full.best_checkpoint == 1
    assert full.tokens == 99
    assert full.steps == 10
    assert "no loss curve" not in training_report(full)


def test_sparkline():
    assert sparkline([3.0, 2.0, 1.0]) == "█▅▁"
    assert sparkline([1.0, 1.0]) == "▁▁"
    assert sparkline([]) == ""
    assert len(sparkline([float(i) for i in range(500)])) == 40
