"""The connection extra `max_requests_per_second`: its default, switching it off, bad values."""

from __future__ import annotations

import json

import pytest

from airflow_predibase.client.settings import DEFAULT_MAX_REQUESTS_PER_SECOND, ClientSettings
from airflow_predibase.hooks.predibase import ConnectionSettingsError, PredibaseHook

TOKEN = "pb_HOOK_BUDGET_token_never_leak_93c1"


def settings_for(monkeypatch: pytest.MonkeyPatch, host: str, **extra: object) -> ClientSettings:
    connection = {"conn_type": "predibase", "host": host, "password": TOKEN, "extra": extra}
    monkeypatch.setenv("AIRFLOW_CONN_PB_BUDGET", json.dumps(connection))
    return PredibaseHook("pb_budget").get_settings()


def test_the_platform_gets_the_default_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = settings_for(monkeypatch, "https://api.app.predibase.com/v2")
    assert settings.request_budget == DEFAULT_MAX_REQUESTS_PER_SECOND == 20


@pytest.mark.parametrize("empty", ["", "  "])
def test_an_empty_form_field_means_the_default(monkeypatch: pytest.MonkeyPatch, empty: str) -> None:
    settings = settings_for(
        monkeypatch, "https://api.app.predibase.com/v2", max_requests_per_second=empty
    )
    assert settings.request_budget == DEFAULT_MAX_REQUESTS_PER_SECOND


def test_the_local_emulator_gets_none_unless_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    assert settings_for(monkeypatch, "http://127.0.0.1:8080/v2").request_budget is None
    asked = settings_for(monkeypatch, "http://127.0.0.1:8080/v2", max_requests_per_second=5)
    assert asked.request_budget == 5


@pytest.mark.parametrize(
    ("value", "budget"),
    [(100, 100.0), ("2.5", 2.5), (0, None), ("0", None), ("off", None), ("OFF", None)],
)
def test_the_extra_sets_or_switches_off_the_budget(
    monkeypatch: pytest.MonkeyPatch, value: object, budget: float | None
) -> None:
    settings = settings_for(
        monkeypatch, "https://api.app.predibase.com/v2", max_requests_per_second=value
    )
    assert settings.request_budget == budget


def test_the_prefixed_key_from_the_ui_works(monkeypatch: pytest.MonkeyPatch) -> None:
    extra = {"extra__predibase__max_requests_per_second": 7}
    assert settings_for(monkeypatch, "api.app.predibase.com", **extra).request_budget == 7


@pytest.mark.parametrize("value", ["lots", -1, "nan", "inf", True, [5]])
def test_a_bad_value_names_the_extra_and_the_way_to_switch_it_off(
    monkeypatch: pytest.MonkeyPatch, value: object
) -> None:
    with pytest.raises(ConnectionSettingsError) as raised:
        settings_for(monkeypatch, "https://api.app.predibase.com/v2", max_requests_per_second=value)
    message = str(raised.value)
    assert "'pb_budget'" in message
    assert "max_requests_per_second" in message
    assert "0 to switch the request budget off" in message
    assert TOKEN not in message
