"""Every long-running resource passes through its states as the clock moves."""

from __future__ import annotations

import json
import sys

import httpx
import pytest
from emulator_testkit import BASE_MODEL, Emu, jsonl, sentiment_rows

from airflow_predibase.client.models import BatchOutputRow, FinetuningJob

# -- datasets -------------------------------------------------------------------------------------


def test_an_uploaded_dataset_connects_after_its_connecting_phase(emu: Emu) -> None:
    created = emu.upload("reviews", jsonl(sentiment_rows(10)))
    assert created["status"] == "connecting"
    assert "row_count" not in created
    emu.advance(0.1)
    assert emu.ok(emu.control.get("/datasets/reviews"))["status"] == "connecting"
    emu.advance(0.3)
    dataset = emu.ok(emu.control.get("/datasets/reviews"))
    assert dataset["status"] == "connected"
    assert dataset["row_count"] == 10
    assert dataset["columns"] == ["prompt", "completion", "split"]
    assert dataset["format"] == "jsonl"
    assert [d["name"] for d in emu.ok(emu.control.get("/datasets"))["data"]] == ["reviews"]


def test_an_unreadable_upload_ends_errored_with_last_error(emu: Emu) -> None:
    emu.upload("broken", b'{"prompt": "a"}\n{oops\n')
    emu.advance(1)
    dataset = emu.ok(emu.control.get("/datasets/broken"))
    assert dataset["status"] == "errored"
    assert "line 2" in dataset["lastError"]


def test_parquet_without_pyarrow_errors_with_a_clear_reason(
    emu: Emu, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The server runs in this process: a None entry hides pyarrow from it.
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    emu.upload("pq", b"PAR1\x00\x00PAR1", file_name="train.parquet")
    emu.advance(1)
    dataset = emu.ok(emu.control.get("/datasets/pq"))
    assert dataset["status"] == "errored"
    assert "pyarrow" in dataset["lastError"]


def test_a_dataset_connects_from_a_local_file_source(emu: Emu, tmp_path) -> None:
    path = tmp_path / "train.csv"
    path.write_text("prompt,completion\nhello,world\nbye,now\n")
    created = emu.ok(emu.control.post("/datasets", json={"name": "csv", "source": str(path)}))
    assert created["status"] == "connecting"
    uri = emu.ok(emu.control.post("/datasets", json={"name": "uri", "source": path.as_uri()}))
    emu.advance(1)
    for name in ("csv", "uri"):
        dataset = emu.ok(emu.control.get(f"/datasets/{name}"))
        assert (dataset["status"], dataset["row_count"]) == ("connected", 2)
    assert uri["source"] == path.as_uri()


def test_a_source_the_emulator_cannot_read_errors_with_the_reason(emu: Emu) -> None:
    emu.ok(emu.control.post("/datasets", json={"name": "s3", "source": "s3://bucket/x.jsonl"}))
    emu.ok(emu.control.post("/datasets", json={"name": "gone", "source": "/nope/x.jsonl"}))
    emu.advance(1)
    assert "local files only" in emu.ok(emu.control.get("/datasets/s3"))["lastError"]
    assert "No such file" in emu.ok(emu.control.get("/datasets/gone"))["lastError"]


# -- fine-tuning ----------------------------------------------------------------------------------


def test_a_fine_tune_queues_trains_with_progress_and_completes_a_version(emu: Emu) -> None:
    emu.dataset("reviews", sentiment_rows(40))
    emu.repo("sentiment")
    job = emu.job("sentiment", "reviews", epochs=2, description="marker-123")
    assert job["status"] == "queued"
    assert "progress" not in job
    assert "adapter_version" not in job
    version = emu.ok(emu.control.get("/repos/sentiment/version/1"))
    assert (version["status"], version["finetuningJob"]) == ("pending", job["id"])

    seen = []
    for _ in range(8):
        emu.advance(0.5)
        seen.append(emu.ok(emu.control.get(f"/finetuning/jobs/{job['id']}")))
    statuses = [j["status"] for j in seen]
    assert statuses[0] == "training"
    assert statuses[-1] == "completed"
    training = [j["progress"] for j in seen if j["status"] == "training"]
    steps = [p["step"] for p in training]
    assert steps == sorted(steps)
    assert steps[0] < steps[-1]
    losses = [p["train_loss"] for p in training if p.get("train_loss") is not None]
    assert losses == sorted(losses, reverse=True)
    assert training[0]["total_steps"] == 2 * 4  # 32 training rows, batches of 8, 2 epochs

    done = FinetuningJob.model_validate(seen[-1])
    assert done.adapter_id == "sentiment/1"
    assert done.progress is not None
    assert done.progress.step == done.progress.total_steps
    assert done.started_at is not None
    assert done.completed_at is not None
    assert done.description == "marker-123"
    repo = emu.ok(emu.control.get("/repos/sentiment"))
    assert [(v["version"], v["status"]) for v in repo["versions"]] == [(1, "ready")]
    assert emu.ok(emu.control.get("/repos/sentiment/version/1"))["baseModel"] == BASE_MODEL


def test_versions_number_one_two_three_per_repo(emu: Emu) -> None:
    emu.dataset("reviews", sentiment_rows(8))
    emu.repo("r")
    jobs = [emu.job("r", "reviews") for _ in range(3)]
    emu.advance(10)
    versions = [
        emu.ok(emu.control.get(f"/finetuning/jobs/{j['id']}"))["adapter_version"] for j in jobs
    ]
    assert versions == [1, 2, 3]


def test_cancel_goes_through_stopping_to_canceled(emu: Emu) -> None:
    emu.dataset("reviews", sentiment_rows(8))
    emu.repo("r")
    job = emu.job("r", "reviews")
    emu.advance(1.5)  # training
    stopping = emu.ok(emu.control.post(f"/finetuning/jobs/{job['id']}/cancel"))
    assert stopping["status"] == "stopping"
    frozen = stopping["progress"]["step"]
    emu.advance(1)
    canceled = emu.ok(emu.control.get(f"/finetuning/jobs/{job['id']}"))
    assert canceled["status"] == "canceled"
    assert canceled["progress"]["step"] == frozen
    assert "adapter_version" not in canceled
    again = emu.ok(emu.control.post(f"/finetuning/jobs/{job['id']}/cancel"))
    assert again["status"] == "canceled"  # cancelling a finished job changes nothing
    assert emu.ok(emu.control.get("/repos/r/version/1"))["status"] == "canceled"


def test_a_dataset_without_the_task_columns_ends_the_job_errored(emu: Emu) -> None:
    emu.dataset("texts", [{"text": "once upon a time"}, {"text": "the end"}])
    emu.repo("r")
    job = emu.job("r", "texts", task="sft")
    assert job["status"] == "queued"  # accepted: the platform finds out while preprocessing
    emu.advance(0.6)
    assert emu.ok(emu.control.get(f"/finetuning/jobs/{job['id']}"))["status"] == "training"
    emu.advance(5)
    errored = emu.ok(emu.control.get(f"/finetuning/jobs/{job['id']}"))
    assert errored["status"] == "errored"
    assert "prompt, completion" in errored["error"]
    assert emu.ok(emu.control.get("/repos/r/version/1"))["status"] == "errored"
    pretraining = emu.job("r", "texts", task="continued_pretraining")
    emu.advance(10)
    done = emu.ok(emu.control.get(f"/finetuning/jobs/{pretraining['id']}"))
    assert done["status"] == "completed"


# -- deployments ----------------------------------------------------------------------------------


def test_a_deployment_goes_pending_initializing_ready(emu: Emu) -> None:
    created = emu.ok(
        emu.control.post(
            "/deployments",
            json={"name": "dep", "base_model": BASE_MODEL, "accelerator": "a100_80gb"},
        )
    )
    assert created["status"] == "pending"
    assert created["accelerator"] == "a100_80gb_100"  # the short form means the _100 variant
    emu.advance(0.6)
    assert emu.ok(emu.control.get("/deployments/dep"))["status"] == "initializing"
    assert emu.serving("dep").post("/generate", json={"inputs": "hi"}).status_code == 503
    emu.advance(1)
    assert emu.ok(emu.control.get("/deployments/dep"))["status"] == "ready"
    assert emu.serving("dep").post("/generate", json={"inputs": "hi"}).status_code == 200


def test_an_update_passes_through_updating_and_still_serves(emu: Emu) -> None:
    emu.deployment("dep", min_replicas=1)
    updated = emu.ok(emu.control.put("/deployments/dep", json={"max_replicas": 3}))
    assert (updated["status"], updated["max_replicas"]) == ("updating", 3)
    assert updated["updated_at"] is not None
    assert emu.serving("dep").post("/generate", json={"inputs": "hi"}).status_code == 200
    emu.advance(1.1)
    assert emu.ok(emu.control.get("/deployments/dep"))["status"] == "ready"


def test_an_idle_scale_to_zero_deployment_goes_standby_and_cold_starts(emu: Emu) -> None:
    emu.deployment("dep", min_replicas=0, cooldown_time=60)
    emu.advance(30)
    assert emu.ok(emu.control.get("/deployments/dep"))["status"] == "ready"
    emu.advance(31)
    assert emu.ok(emu.control.get("/deployments/dep"))["status"] == "standby"
    before = emu.clock.now()
    # The request queues through the cold start (the manual clock moves instead of sleeping).
    answer = emu.serving("dep").post("/generate", json={"inputs": "hello"})
    assert answer.status_code == 200, answer.text
    assert emu.clock.now() - before == pytest.approx(0.5)
    assert emu.ok(emu.control.get("/deployments/dep"))["status"] == "ready"


def test_delete_goes_through_deleting_then_404(emu: Emu) -> None:
    emu.deployment("dep")
    assert emu.ok(emu.control.delete("/deployments/dep"))["status"] == "deleting"
    assert emu.ok(emu.control.get("/deployments/dep"))["status"] == "deleting"
    emu.advance(1)
    assert emu.control.get("/deployments/dep").status_code == 404
    assert emu.ok(emu.control.get("/deployments"))["data"] == []
    emu.deployment("dep")  # the name is free again


# -- batch inference ------------------------------------------------------------------------------


def _batch_rows(adapter: str) -> list[dict]:
    rows = []
    for i, review in enumerate(["the film was great and loved", "awful and boring film"]):
        for model in ("", adapter):
            rows.append(
                {
                    "custom_id": f"{i}-{model or 'base'}",
                    "method": "POST",
                    "url": "/v1/chat/completions",
                    "body": {
                        "model": model,
                        "messages": [{"role": "user", "content": f"Review: {review}. Sentiment:"}],
                        "max_tokens": 16,
                    },
                }
            )
    rows.append({**rows[0], "custom_id": "missing", "body": {**rows[0]["body"], "model": "x/9"}})
    return rows


def test_batch_runs_and_answers_each_row_by_custom_id(emu: Emu) -> None:
    adapter = emu.adapter("sentiment", sentiment_rows())
    emu.dataset("batch-in", _batch_rows(adapter))
    job = emu.ok(
        emu.control.post(
            "/batch-inference/jobs", json={"base_model": BASE_MODEL, "dataset": "batch-in"}
        )
    )
    assert job["status"] == "queued"
    assert emu.control.get(f"/batch-inference/jobs/{job['id']}/results").status_code == 409
    emu.advance(0.9)
    running = emu.ok(emu.control.get(f"/batch-inference/jobs/{job['id']}"))
    assert running["status"] == "running"
    assert running["total_rows"] == 5
    assert 0 <= running["completed_rows"] < 4
    emu.advance(2)
    done = emu.ok(emu.control.get(f"/batch-inference/jobs/{job['id']}"))
    assert (done["status"], done["completed_rows"], done["failed_rows"]) == ("completed", 4, 1)
    url = emu.ok(emu.control.get(f"/batch-inference/jobs/{job['id']}/results"))["url"]
    lines = httpx.get(url).text.splitlines()  # a presigned-style URL: no auth header
    rows = {r.custom_id: r for r in (BatchOutputRow.model_validate(json.loads(x)) for x in lines)}
    assert set(rows) == {"0-base", f"0-{adapter}", "1-base", f"1-{adapter}", "missing"}
    assert rows[f"0-{adapter}"].text == "positive"
    assert rows[f"1-{adapter}"].text == "negative"
    assert rows["0-base"].text == rows["1-base"].text  # the base model says the same thing
    assert rows["missing"].error is not None
    assert rows["missing"].response is None


def test_batch_cancel_and_a_malformed_input_file(emu: Emu) -> None:
    emu.dataset("bad-in", [{"custom_id": "1", "body": {"messages": []}}, {"nothing": 1}])
    bad = emu.ok(
        emu.control.post(
            "/batch-inference/jobs", json={"base_model": BASE_MODEL, "dataset": "bad-in"}
        )
    )
    good_rows = [
        {"custom_id": "a", "body": {"model": "", "messages": [{"role": "user", "content": "hi"}]}}
    ]
    emu.dataset("in", good_rows)
    other = emu.ok(
        emu.control.post("/batch-inference/jobs", json={"base_model": BASE_MODEL, "dataset": "in"})
    )
    assert (
        emu.ok(emu.control.post(f"/batch-inference/jobs/{other['id']}/cancel"))["status"]
        == "canceled"
    )
    emu.advance(5)
    assert emu.ok(emu.control.get(f"/batch-inference/jobs/{other['id']}"))["status"] == "canceled"
    errored = emu.ok(emu.control.get(f"/batch-inference/jobs/{bad['id']}"))
    assert errored["status"] == "errored"
    assert "row 1 body has no messages" in errored["error"]


# -- control routes: advance, force, the instant profile ------------------------------------------


def test_the_control_api_advances_and_forces_states(emu: Emu) -> None:
    emu.dataset("reviews", sentiment_rows(8))
    emu.repo("r")
    job = emu.job("r", "reviews")
    assert emu.admin.advance("finetuning", job["id"])["status"] == "training"
    assert emu.admin.advance("finetuning", job["id"])["status"] == "completed"
    other = emu.job("r", "reviews")
    forced = emu.admin.force("finetuning", other["id"], "errored", error="CUDA out of memory")
    assert (forced["status"], forced["error"]) == ("errored", "CUDA out of memory")
    third = emu.job("r", "reviews")
    emu.admin.force("finetuning", third["id"], "training")
    emu.advance(3.1)  # the lifecycle carries on from the forced state
    assert emu.ok(emu.control.get(f"/finetuning/jobs/{third['id']}"))["status"] == "completed"
    with pytest.raises(RuntimeError, match="valid statuses"):
        emu.admin.force("finetuning", third["id"], "exploded")


def test_the_instant_profile_moves_one_state_per_read(emu: Emu) -> None:
    emu.admin.set_profile("instant")
    emu.upload("reviews", jsonl(sentiment_rows(8)))
    assert emu.ok(emu.control.get("/datasets/reviews"))["status"] == "connected"
    emu.repo("r")
    job = emu.job("r", "reviews")
    assert job["status"] == "queued"
    reads = [emu.ok(emu.control.get(f"/finetuning/jobs/{job['id']}"))["status"] for _ in range(3)]
    assert reads == ["training", "completed", "completed"]
    emu.ok(emu.control.post("/deployments", json={"name": "d", "base_model": BASE_MODEL}))
    reads = [emu.ok(emu.control.get("/deployments/d"))["status"] for _ in range(2)]
    assert reads == ["initializing", "ready"]


def test_scheduled_failures_hit_the_next_resources_created(emu: Emu) -> None:
    emu.dataset("reviews", sentiment_rows(8))
    emu.repo("r")
    emu.admin.fail_next("finetuning", count=1, error="node preempted")
    emu.admin.fail_next("deployments", error="no capacity")
    failing, fine = emu.job("r", "reviews"), emu.job("r", "reviews")
    emu.ok(emu.control.post("/deployments", json={"name": "d", "base_model": BASE_MODEL}))
    emu.advance(10)
    first = emu.ok(emu.control.get(f"/finetuning/jobs/{failing['id']}"))
    assert (first["status"], first["error"]) == ("errored", "node preempted")
    assert emu.ok(emu.control.get(f"/finetuning/jobs/{fine['id']}"))["status"] == "completed"
    deployment = emu.ok(emu.control.get("/deployments/d"))
    assert (deployment["status"], deployment["error"]) == ("failed", "no capacity")


def test_state_lists_everything_for_system_tests(emu: Emu) -> None:
    emu.adapter("r", sentiment_rows(8))
    state = emu.admin.state()
    assert state["counts"] == {
        "datasets": 1,
        "repos": 1,
        "finetuning_jobs": 1,
        "deployments": 0,
        "batch_jobs": 0,
    }
    assert state["finetuning_jobs"][0]["status"] == "completed"
    assert state["profile"]["name"] == "fast"
