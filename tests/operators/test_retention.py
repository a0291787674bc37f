"""ArchiveAdapterVersionsOperator on the real emulator: the newest N stay, the champion and
the previous champion are never touched, nor a version still training; re-runs are no-ops."""

from __future__ import annotations

from typing import Any

import pytest

from airflow_predibase.client.models import FinetuningJobRequest
from airflow_predibase.exceptions import PredibaseInvalidParameter
from airflow_predibase.operators.promote import PromoteAdapterOperator
from airflow_predibase.operators.retention import ArchiveAdapterVersionsOperator
from tests.operators.champion_kit import TICKETS, deploy, train
from tests.taskkit import STUCK_PROFILE, make_context, upload


def retention(**overrides: Any) -> ArchiveAdapterVersionsOperator:
    params: dict[str, Any] = {"task_id": "retention", "repo": "router", "keep_last": 2}
    params.update(overrides)
    return ArchiveAdapterVersionsOperator(**params)


@pytest.fixture
def five_versions(emulator: Any, client: Any) -> list[str]:
    upload(client, "tickets", TICKETS)
    return [train(client, f"tickets{i}", TICKETS) for i in range(5)]


def _archived(client: Any) -> dict[int, bool]:
    return {v.version: v.archived for v in client.list_adapter_versions("router")}


def test_archives_beyond_the_newest_but_never_the_champion(five_versions: list[str], client: Any):
    deploy()
    for adapter in ("router/1", "router/2"):  # router/2 champion, router/1 previous
        PromoteAdapterOperator(
            task_id="promote", deployment="router", adapter=adapter, poll_interval=0.05,
            deferrable=False,
        ).execute(make_context(task_id="promote"))  # fmt: skip
    result = retention(deployment="router").execute(make_context())
    assert result["archived"] == ["router/3"]
    assert result["kept"] == ["router/4", "router/5"]
    assert result["protected"] == ["router/1", "router/2"]
    assert _archived(client) == {1: False, 2: False, 3: True, 4: False, 5: False}
    # Again: nothing more to do.
    again = retention(deployment="router").execute(make_context())
    assert (again["archived"], again["unchanged"]) == ([], ["router/3"])
    assert _archived(client) == {1: False, 2: False, 3: True, 4: False, 5: False}


def test_delete_spares_an_explicit_champion(five_versions: list[str], client: Any):
    result = retention(action="delete", keep=["router/1"]).execute(make_context())
    assert result["deleted"] == ["router/2", "router/3"]
    assert [v.version for v in client.list_adapter_versions("router")] == [1, 4, 5]
    assert retention(action="delete", keep=["router/1"]).execute(make_context())["deleted"] == []


def test_a_version_still_training_is_never_touched(
    five_versions: list[str], client: Any, emulator: Any
):
    emulator.admin.set_profile(STUCK_PROFILE)
    client.create_finetuning_job(
        FinetuningJobRequest(base_model="qwen3-8b", dataset="tickets", repo="router")
    )
    result = retention(keep_last=1, action="delete").execute(make_context())
    # The newest trained version is router/5; router/6 is training.
    assert result["kept"] == ["router/5"]
    assert result["unfinished"] == ["router/6"]
    assert result["deleted"] == ["router/1", "router/2", "router/3", "router/4"]
    assert [v.version for v in client.list_adapter_versions("router")] == [5, 6]


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"action": "purge"}, r"action='purge' is not valid; choose one of: archive, delete"),
        ({"keep_last": 0}, r"keep_last must be an integer of at least 1"),
        ({"keep_last": "many"}, r"keep_last must be an integer"),
    ],
)
def test_bad_parameters_name_the_field_and_the_choices(overrides: dict[str, Any], expected: str):
    with pytest.raises(PredibaseInvalidParameter, match=expected):
        retention(**overrides)
