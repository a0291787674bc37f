"""NewAdapterVersionTrigger over real HTTP against the emulator, run as the triggerer runs
an AssetWatcher's trigger: `run()` consumed in the background of an asyncio loop, with the
watched Asset's state store injected as Airflow 3.3 does (here a JSON round-tripping dict).

Adapter versions are made outside Airflow, with a plain client fine-tune."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from typing import Any

import pytest

from airflow_predibase.client.models import FinetuningJobRequest, RepoRequest
from airflow_predibase.triggers.adapter_versions import (
    AdapterVersionReady,
    NewAdapterVersionTrigger,
    SettledVersions,
)
from tests.taskkit import STUCK_PROFILE, needs_asset_state_store, upload

ROWS = [{"prompt": "a b c", "completion": "x"}, {"prompt": "d e f", "completion": "y"}]


class JsonStore:
    """The watched Asset's state store: JSON values by key, as Airflow keeps them."""

    def __init__(self) -> None:
        self.values: dict[str, str] = {}
        self.writes = 0

    async def aget(self, key: str, default: Any = None) -> Any:
        return json.loads(self.values[key]) if key in self.values else default

    async def aset(self, key: str, value: Any) -> None:
        self.values[key] = json.dumps(value)
        self.writes += 1


class Watching:
    """A trigger's run() consumed in the background, as the triggerer does."""

    def __init__(self, trigger: NewAdapterVersionTrigger) -> None:
        self.trigger = trigger
        self.events: list[dict[str, Any]] = []
        self.task = asyncio.create_task(self._consume())

    async def _consume(self) -> None:
        async for event in self.trigger.run():
            self.events.append(event.payload)

    async def until(self, condition: Callable[[], bool], timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            if self.task.done():
                self.task.result()  # raises what ended the run
            assert time.monotonic() < deadline, f"timed out; events so far: {self.events}"
            await asyncio.sleep(0.02)

    async def settle(self, polls: int = 5) -> None:
        """Let the trigger poll a few more times (to show it fires nothing more)."""
        await asyncio.sleep(self.trigger.poll_interval * 1.2 * polls + self.trigger.commit_delay)

    async def stop(self) -> None:
        self.task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await self.task


def watcher(store: JsonStore | None, repo: str = "r", **kwargs: Any) -> NewAdapterVersionTrigger:
    trigger = NewAdapterVersionTrigger(repo=repo, poll_interval=0.05, **kwargs)
    trigger.commit_delay = 0.0
    trigger.asset_state_store = store
    return trigger


def finetune(client: Any, repo: str = "r") -> str:
    """A fine-tune started outside Airflow; returns the job ID."""
    job = client.create_finetuning_job(
        FinetuningJobRequest(base_model="qwen3-8b", dataset="rows", repo=repo)
    )
    return str(job.id)


def ready_versions(client: Any, repo: str = "r") -> list[int]:
    return [v.version for v in client.get_repo(repo).versions if v.status.is_success]


async def wait_ready(client: Any, count: int, repo: str = "r") -> None:
    deadline = time.monotonic() + 10
    while len(ready_versions(client, repo)) < count:
        assert time.monotonic() < deadline, "the adapter never became ready"
        await asyncio.sleep(0.05)


@pytest.fixture
def rows(client: Any) -> None:
    upload(client, "rows", ROWS)
    client.create_repo(RepoRequest(name="r"))


def test_serialize_round_trips_with_json_scalars_only():
    original = NewAdapterVersionTrigger(repo="r", predibase_conn_id="c", poll_interval=7)
    classpath, kwargs = original.serialize()
    assert kwargs == {"repo": "r", "predibase_conn_id": "c", "poll_interval": 7.0}
    assert json.loads(json.dumps(kwargs)) == kwargs
    rebuilt = NewAdapterVersionTrigger(**kwargs)
    assert rebuilt.serialize() == (classpath, kwargs)
    # The watcher's identity: the same kwargs are the same trigger after a re-parse.
    assert NewAdapterVersionTrigger.hash(classpath, kwargs) == NewAdapterVersionTrigger.hash(
        *rebuilt.serialize()
    )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"repo": ""}, "repo must be"),
        ({"repo": "r/1"}, "repo must be"),
        ({"repo": "r", "poll_interval": 0}, "poll_interval must be > 0"),
    ],
)
def test_bad_arguments_fail_when_the_dag_is_parsed(kwargs: dict[str, Any], message: str):
    with pytest.raises(ValueError, match=message):
        NewAdapterVersionTrigger(**kwargs)


def test_settled_versions_compact_as_they_fill_in():
    settled = SettledVersions()
    for version in (1, 3, 4):
        settled.settle(version)
    assert (settled.through, settled.above) == (1, [3, 4])
    assert 3 in settled
    assert 2 not in settled
    settled.settle(2)
    assert (settled.through, settled.above) == (4, [])


async def test_fires_once_for_a_version_trained_outside_airflow(
    emulator: Any, client: Any, rows: None
):
    finetune(client)
    await wait_ready(client, 1)  # already there when the watcher starts: old news
    store = JsonStore()
    watching = Watching(watcher(store))
    await watching.until(lambda: store.writes >= 1)  # the first-run watermark is stored

    job_id = finetune(client)
    await watching.until(lambda: len(watching.events) == 1)
    await watching.settle()
    await watching.stop()

    assert watching.events == [
        AdapterVersionReady(
            adapter_id="r/2",
            repo="r",
            version=2,
            base_model="qwen3-8b",
            finetuning_job=job_id,
            created_at=client.get_adapter_version("r", 2).created_at,
        ).model_dump()
    ]
    assert (
        SettledVersions.model_validate(json.loads(next(iter(store.values.values())))).through == 2
    )


async def test_a_restarted_trigger_never_fires_old_versions_again(
    emulator: Any, client: Any, rows: None
):
    store = JsonStore()
    first = Watching(watcher(store))
    await first.until(lambda: store.writes >= 1)
    finetune(client)
    await first.until(lambda: len(first.events) == 1)
    await first.until(lambda: store.writes >= 2)  # the watermark covering r/1
    await first.stop()  # triggerer restart

    # While no triggerer ran, another version became ready: the new trigger (a fresh object
    # from the same kwargs, as after a restart) fires it, and only it.
    finetune(client)
    await wait_ready(client, 2)
    second = Watching(watcher(store))
    await second.until(lambda: len(second.events) == 1)
    await second.settle()
    await second.stop()
    assert [e["adapter_id"] for e in second.events] == ["r/2"]


async def test_a_stop_before_the_watermark_is_stored_fires_again_rather_than_losing(
    emulator: Any, client: Any, rows: None
):
    store = JsonStore()
    trigger = watcher(store)
    trigger.commit_delay = 60.0  # the triggerer stops within the commit delay
    first = Watching(trigger)
    await first.until(lambda: store.writes >= 1)
    finetune(client)
    await first.until(lambda: len(first.events) == 1)
    await first.stop()

    second = Watching(watcher(store))
    await second.until(lambda: len(second.events) == 1)
    await second.stop()
    assert first.events == second.events  # at least once: the event may not have been saved


async def test_versions_finishing_out_of_order_each_fire_once_and_failures_never(
    emulator: Any, client: Any, rows: None
):
    emulator.admin.set_profile(STUCK_PROFILE)
    store = JsonStore()
    watching = Watching(watcher(store))
    await watching.until(lambda: store.writes >= 1)
    jobs = [finetune(client) for _ in range(3)]

    emulator.admin.force("finetuning_job", jobs[2], "completed")  # r/3 is ready first
    await watching.until(lambda: len(watching.events) == 1)
    emulator.admin.force("finetuning_job", jobs[1], "errored", error="CUDA out of memory")
    emulator.admin.force("finetuning_job", jobs[0], "completed")
    await watching.until(lambda: len(watching.events) == 2)
    await watching.settle()
    await watching.stop()

    assert [e["adapter_id"] for e in watching.events] == ["r/3", "r/1"]
    stored = SettledVersions.model_validate(json.loads(next(iter(store.values.values()))))
    assert (stored.through, stored.above) == (3, [])


async def test_a_version_training_when_the_watcher_starts_fires_when_ready(
    emulator: Any, client: Any, rows: None
):
    emulator.admin.set_profile(STUCK_PROFILE)
    job_id = finetune(client)
    store = JsonStore()
    watching = Watching(watcher(store))
    await watching.until(lambda: store.writes >= 1)
    emulator.admin.force("finetuning_job", job_id, "completed")
    await watching.until(lambda: len(watching.events) == 1)
    await watching.stop()
    assert watching.events[0]["adapter_id"] == "r/1"


async def test_a_repository_created_later_is_watched_from_empty(emulator: Any, client: Any):
    upload(client, "rows", ROWS)
    trigger = watcher(None, repo="later")  # no state store: memory only
    watching = Watching(trigger)
    await watching.until(lambda: trigger._settled is not None)  # polled the missing repo
    client.create_repo(RepoRequest(name="later"))
    finetune(client, repo="later")
    await watching.until(lambda: len(watching.events) == 1)
    await watching.stop()
    assert watching.events[0]["adapter_id"] == "later/1"


async def test_polling_failures_back_off_and_polling_carries_on(
    emulator: Any, client: Any, rows: None
):
    store = JsonStore()
    watching = Watching(watcher(store))
    await watching.until(lambda: store.writes >= 1)
    # Five 503s: one poll's every client attempt fails, so the trigger itself backs off.
    emulator.admin.add_fault("status", method="GET", path="/v2/repos/r", status=503, count=5)
    finetune(client)
    await watching.until(lambda: len(watching.events) == 1, timeout=30)
    await watching.stop()
    assert watching.events[0]["adapter_id"] == "r/1"
    assert emulator.admin.faults()["rules"] == []  # every fault was hit


@needs_asset_state_store
async def test_a_trigger_watching_several_assets_keeps_its_watermark_in_memory(
    emulator: Any, client: Any, rows: None
):
    from airflow.sdk import Asset
    from airflow.sdk.execution_time.context import AssetStateStoreAccessors

    trigger = watcher(None)
    # What Airflow injects when one trigger watches two Assets: no single store to use.
    trigger.asset_state_store = AssetStateStoreAccessors(inlets=[Asset("a"), Asset("b")])
    watching = Watching(trigger)
    await watching.until(lambda: trigger._settled is not None)  # the first poll is done
    finetune(client)
    await watching.until(lambda: len(watching.events) == 1)
    await watching.settle()
    await watching.stop()
    assert [e["adapter_id"] for e in watching.events] == ["r/1"]


class BrokenStore(JsonStore):
    async def aset(self, key: str, value: Any) -> None:
        raise RuntimeError("the API server is away")


async def test_a_store_that_cannot_be_written_does_not_stop_the_watcher(
    emulator: Any, client: Any, rows: None
):
    trigger = watcher(BrokenStore())
    watching = Watching(trigger)
    await watching.until(lambda: trigger._settled is not None)  # the first poll is done
    finetune(client)
    await watching.until(lambda: len(watching.events) == 1)
    await watching.settle()
    await watching.stop()
    assert [e["adapter_id"] for e in watching.events] == ["r/1"]  # once, from memory
