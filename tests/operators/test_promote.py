"""PromoteAdapterOperator on the real emulator: the deployment serves the new champion, the
previous one stays loaded for a rollback, re-runs change nothing, the Asset event names both."""

from __future__ import annotations

from typing import Any

import pytest

from airflow_predibase.exceptions import PredibaseInvalidParameter
from airflow_predibase.operators.promote import (
    ChampionRecord,
    PromoteAdapterOperator,
    champion_asset,
    champion_of,
    promoted,
)
from tests.operators.champion_kit import TICKETS, WRONG, deploy, train
from tests.taskkit import DictStateStore, make_context, run_deferred


def promote(**overrides: Any) -> PromoteAdapterOperator:
    params: dict[str, Any] = {
        "task_id": "promote",
        "deployment": "router",
        "poll_interval": 0.05,
        "deferrable": False,
    }
    params.update(overrides)
    return PromoteAdapterOperator(**params)


def extra(context: dict[str, Any]) -> dict[str, Any]:
    return dict(context["outlet_events"][champion_asset("router")].extra)


@pytest.fixture
def adapters(emulator: Any, client: Any) -> tuple[str, str]:
    first = train(client, "good", TICKETS)
    second = train(client, "bad", WRONG)
    deploy()
    return first, second


def test_promote_then_promote_again_keeps_the_previous_warm(adapters: tuple[str, str], client: Any):
    first, second = adapters
    context = make_context()
    result = promote(adapter=first).execute(context)
    assert result == {
        "action": "promoted",
        "champion": first,
        "previous": None,
        "deployment": "router",
    }
    assert extra(context) == {
        "adapter": first,
        "previous": None,
        "deployment": "router",
        "action": "promoted",
    }
    context = make_context()
    result = promote(adapter=second).execute(context)
    assert (result["action"], result["champion"], result["previous"]) == ("promoted", second, first)
    deployment = client.get_deployment("router")
    assert deployment.preloaded_adapters == [second, first]
    assert deployment.status == "ready"
    assert champion_of(client, "router") == ChampionRecord(second, first)
    assert extra(context)["previous"] == first


def test_a_re_run_after_success_changes_nothing(adapters: tuple[str, str], client: Any):
    first, _ = adapters
    promote(adapter=first).execute(make_context())
    before = client.get_deployment("router").updated_at
    context = make_context()
    result = promote(adapter=first).execute(context)
    assert result["action"] == "unchanged"
    assert result["champion"] == first
    assert client.get_deployment("router").updated_at == before
    assert extra(context)["action"] == "unchanged"


def test_rollback_serves_the_previous_champion_once(adapters: tuple[str, str], client: Any):
    first, second = adapters
    promote(adapter=first).execute(make_context())
    promote(adapter=second).execute(make_context())
    store = DictStateStore()
    context = make_context(task_id="rollback", store=store)
    result = promote(task_id="rollback", rollback=True).execute(context)
    assert result == {
        "action": "rolled_back",
        "champion": first,
        "previous": second,
        "deployment": "router",
    }
    assert client.get_deployment("router").preloaded_adapters == [first]
    assert extra(context)["adapter"] == first
    # The same task instance again (a retry, a clear): nothing more to do.
    again = promote(task_id="rollback", rollback=True).execute(
        make_context(task_id="rollback", store=store)
    )
    assert (again["action"], again["champion"], again["previous"]) == ("unchanged", first, second)
    assert client.get_deployment("router").preloaded_adapters == [first]


def test_rollback_without_a_previous_champion_fails_clearly(adapters: tuple[str, str]):
    first, _ = adapters
    promote(adapter=first).execute(make_context())
    with pytest.raises(PredibaseInvalidParameter, match="no previous champion to roll back to"):
        promote(rollback=True).execute(make_context())


def test_deferred_promotion_waits_in_the_trigger(adapters: tuple[str, str], client: Any):
    first, _ = adapters
    context = make_context()
    result = run_deferred(promote(adapter=first, deferrable=True), context)
    assert (result["action"], result["champion"]) == ("promoted", first)
    assert client.get_deployment("router").preloaded_adapters == [first]
    assert extra(context)["adapter"] == first


def test_an_adapter_that_is_not_trained_is_refused(adapters: tuple[str, str], emulator: Any):
    with pytest.raises(PredibaseInvalidParameter, match="adapter router/9 does not exist"):
        promote(adapter="router/9").execute(make_context())


def test_adapters_of_other_repositories_stay_preloaded():
    assert promoted(["router/2", "router/1", "other/4"], "router/3") == [
        "router/3",
        "router/2",
        "other/4",
    ]
    assert promoted(["other/4"], "router/1") == ["router/1", "other/4"]
    assert ChampionRecord.of(["router/3", "other/4"]) == ChampionRecord("router/3", None)


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({}, r"adapter must be given"),
        ({"adapter": "router"}, r"adapter='router' is not an adapter ID '<repo>/<version>'"),
        ({"adapter": "router/1", "deployment": ""}, r"deployment must be given"),
    ],
)
def test_bad_parameters_fail_at_parse_time(overrides: dict[str, Any], expected: str):
    with pytest.raises(PredibaseInvalidParameter, match=expected):
        promote(**overrides)
