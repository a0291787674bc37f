"""The opt-in `[predibase] triggerer_gc_freeze` switch (docs/scaling.md): off by default, a
real trigger's first successful poll freezes the heap when it is on."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from typing import Any

import pytest

from airflow_predibase.client.models import FinetuningJobRequest, RepoRequest
from airflow_predibase.triggers._gc_freeze import GcFreeze
from airflow_predibase.triggers.base import FinetuningJobTrigger
from tests.taskkit import upload

ROWS = [{"prompt": "a b c", "completion": "x"}]
SWITCH = "AIRFLOW__PREDIBASE__TRIGGERER_GC_FREEZE"


@pytest.fixture
def fresh_switch(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    """The switch unread and the heap unfrozen, before and after (it is process-wide)."""
    for name, value in (("enabled", None), ("next_freeze", 0.0), ("next_unfreeze", None)):
        monkeypatch.setattr(GcFreeze, name, value)
    gc.unfreeze()
    yield monkeypatch
    gc.unfreeze()


async def poll_once(client: Any) -> None:
    upload(client, "rows", ROWS)
    client.create_repo(RepoRequest(name="r"))
    job = client.create_finetuning_job(
        FinetuningJobRequest(base_model="qwen3-8b", dataset="rows", repo="r")
    )
    trigger = FinetuningJobTrigger(resource_id=str(job.id), poll_interval=0.05, first_poll_delay=0)
    async for event in trigger.run():
        assert event.payload["status"] == "success", event.payload
        return


async def test_off_by_default_nothing_is_frozen(
    emulator: Any, client: Any, fresh_switch: pytest.MonkeyPatch
) -> None:
    fresh_switch.delenv(SWITCH, raising=False)
    await poll_once(client)
    assert GcFreeze.enabled is False
    assert gc.get_freeze_count() == 0


async def test_on_the_first_poll_freezes_the_heap(
    emulator: Any, client: Any, fresh_switch: pytest.MonkeyPatch
) -> None:
    fresh_switch.setenv(SWITCH, "True")
    await poll_once(client)
    assert GcFreeze.enabled is True
    assert gc.get_freeze_count() > 0
