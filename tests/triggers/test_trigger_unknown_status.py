"""Every deferred wait ends: a status the provider does not know, reported over real HTTP by
the emulator's `unknown_status` fault, is warned about once and ends the trigger's wait after
`max_unknown_status` (issue 10, defect 4)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from airflow_predibase.client.models import FinetuningJobRequest, RepoRequest
from airflow_predibase.triggers.base import FinetuningJobTrigger
from airflow_predibase.waiting.waiter import DEFAULT_MAX_UNKNOWN_STATUS
from tests.taskkit import STUCK_PROFILE, upload


@pytest.fixture
def job_id(client: Any) -> str:
    upload(client, "rows", [{"prompt": "a b c", "completion": "x"}])
    client.create_repo(RepoRequest(name="r"))
    job = client.create_finetuning_job(
        FinetuningJobRequest(base_model="qwen3-8b", dataset="rows", repo="r")
    )
    return str(job.id)


async def first_event(trigger: FinetuningJobTrigger) -> dict[str, Any]:
    async for event in trigger.run():
        payload: dict[str, Any] = event.payload
        return payload
    raise AssertionError("no event")


async def test_an_unknown_status_ends_the_deferred_wait_after_the_bound(
    emulator: Any, job_id: str, capsys: pytest.CaptureFixture[str]
):
    """Regression: the trigger polled an unknown status for ever (no deadline by default)."""
    emulator.admin.set_profile(STUCK_PROFILE)
    emulator.admin.unknown_status(
        f"/v2/finetuning/jobs/{job_id}", reported_status="suspended", count=1000
    )
    trigger = FinetuningJobTrigger(
        resource_id=job_id, poll_interval=0.05, first_poll_delay=0.0, max_unknown_status=0.4
    )
    # Through the trigger table and back, as the triggerer revives it.
    _, kwargs = trigger.serialize()
    assert json.loads(json.dumps(kwargs))["max_unknown_status"] == 0.4
    event = await first_event(FinetuningJobTrigger(**kwargs))
    assert event["status"] == "failed"
    assert event["remote_status"] == "suspended"
    assert "'suspended'" in event["message"]
    assert "does not know" in event["message"]
    # The trigger's log (structlog, printed): one warning, however many polls saw it.
    assert capsys.readouterr().out.count("it counts as not finished") == 1


def test_a_trigger_revived_from_an_older_row_gets_the_default_bound():
    kwargs = {"resource_id": "j", "poll_interval": 30.0, "deadline": None}
    assert FinetuningJobTrigger(**kwargs).max_unknown_status == DEFAULT_MAX_UNKNOWN_STATUS
