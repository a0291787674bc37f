"""The connection's `dialect` extra, and the one log line that says which dialect a task speaks."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from structlog.testing import capture_logs

from airflow_predibase.client._dialect import forget
from airflow_predibase.client.models import FinetuningJobRequest
from airflow_predibase.hooks.predibase import ConnectionSettingsError, PredibaseHook

TOKEN = "pb_HOOK_DIALECT_never_leak_93ab"
USER = {"uuid": "u", "username": "ada", "tenant": {"name": "Acme", "shortCode": "acme42"}}
JOB = {"uuid": "job-1", "status": "queued", "targetRepoName": "r", "targetVersionTag": 1}


@pytest.fixture(autouse=True)
def _fresh_detection() -> Iterator[None]:
    forget()
    yield
    forget()


def _conn(monkeypatch: pytest.MonkeyPatch, conn_id: str, extra: dict[str, Any]) -> None:
    value = {"conn_type": "predibase", "password": TOKEN, "extra": extra}
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(value))


def _production(request: httpx.Request) -> httpx.Response:
    if request.url.path.endswith("/users/current"):
        return httpx.Response(200, json=USER)
    return httpx.Response(200, json=JOB)


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ({}, "auto"),
        ({"dialect": "platform"}, "platform"),
        ({"dialect": " SPEC "}, "spec"),
        ({"extra__predibase__dialect": "platform"}, "platform"),
        ({"dialect": ""}, "auto"),
    ],
)
def test_the_dialect_extra(
    monkeypatch: pytest.MonkeyPatch, extra: dict[str, Any], expected: str
) -> None:
    _conn(monkeypatch, "pb_dialect", extra)
    assert PredibaseHook("pb_dialect").get_settings().dialect == expected


def test_a_bad_dialect_names_the_field_and_the_choices(monkeypatch: pytest.MonkeyPatch) -> None:
    _conn(monkeypatch, "pb_bad_dialect", {"dialect": "production"})
    with pytest.raises(ConnectionSettingsError) as caught:
        PredibaseHook("pb_bad_dialect").get_settings()
    assert "extra dialect 'production'" in str(caught.value)
    assert "auto, spec, platform" in str(caught.value)


def _events(logs: list[dict[str, Any]]) -> list[str]:
    return [str(entry["event"]) for entry in logs]


def test_the_detected_dialect_is_logged_once_per_task(monkeypatch: pytest.MonkeyPatch) -> None:
    _conn(monkeypatch, "pb_log", {})
    http = httpx.Client(transport=httpx.MockTransport(_production))
    hook = PredibaseHook("pb_log", http_client=http)
    request = FinetuningJobRequest(base_model="m", dataset="d", repo="r")
    with capture_logs() as logs:
        client = hook.get_client()
        client.create_finetuning_job(request)
        client.create_finetuning_job(request)
        asyncio.run(_async_create(hook, request))
    lines = [line for line in _events(logs) if "dialect" in line]
    assert lines == ["Predibase API dialect: platform (detected)"]
    assert TOKEN not in repr(logs)


async def _async_create(hook: PredibaseHook, request: FinetuningJobRequest) -> None:
    hook._async_http_client = httpx.AsyncClient(transport=httpx.MockTransport(_production))
    client = await hook.get_async_client()
    await client.create_finetuning_job(request)


def test_a_dialect_set_by_the_connection_is_logged_without_a_probe(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _conn(monkeypatch, "pb_forced", {"dialect": "spec"})
    paths: list[str] = []

    def seed(request: httpx.Request) -> httpx.Response:
        paths.append(request.url.path)
        return httpx.Response(200, json={"id": "j", "status": "queued"})

    hook = PredibaseHook("pb_forced", http_client=httpx.Client(transport=httpx.MockTransport(seed)))
    with capture_logs() as logs:
        hook.get_client().create_finetuning_job(
            FinetuningJobRequest(base_model="m", dataset="d", repo="r")
        )
    assert "Predibase API dialect: spec (set by the connection)" in _events(logs)
    assert paths == ["/v2/finetuning/jobs"]


def test_the_hook_speaks_the_emulators_dialect(emulator: Any) -> None:
    """Against the session emulator ($PREDIBASE_EMULATOR_DIALECT), default settings."""
    client = PredibaseHook().get_client()
    client.list_models()
    choice = client.resolve_dialect()
    server = emulator.config.dialect
    assert choice.dialect == ("spec" if server == "spec" else "platform")
    assert choice.detected
