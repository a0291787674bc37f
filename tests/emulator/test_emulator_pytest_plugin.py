"""The fixtures a user's own test suite gets from the `pytest11` entry point."""

from __future__ import annotations

import json
import os

import httpx
import pytest

from airflow_predibase.emulator import EmulatorServer
from airflow_predibase.emulator.in_process import InProcessEmulator

pytest_plugins = ["pytester"]


def test_predibase_emulator_is_running_and_sets_the_connection(
    predibase_emulator: EmulatorServer,
) -> None:
    connection = json.loads(os.environ["AIRFLOW_CONN_PREDIBASE_DEFAULT"])
    assert connection == {
        "conn_type": "predibase",
        "host": f"{predibase_emulator.url}/v2",
        "password": predibase_emulator.token,
        "extra": {"tenant_id": predibase_emulator.tenant, "serving_url": predibase_emulator.url},
    }
    models = httpx.get(
        f"{connection['host']}/models",
        headers={"Authorization": f"Bearer {connection['password']}"},
    )
    assert models.status_code == 200


async def test_predibase_emulator_app_runs_in_process(
    predibase_emulator_app: InProcessEmulator,
) -> None:
    async with predibase_emulator_app.async_client() as client:
        created = await client.post("/v2/repos", json={"name": "r"})
        assert created.status_code == 200
    async with predibase_emulator_app.async_client(authenticated=False) as client:
        assert (await client.get("/v2/repos")).status_code == 401


USER_TESTS = """
import json
import os

import httpx


def _client():
    conn = json.loads(os.environ["AIRFLOW_CONN_PREDIBASE_DEFAULT"])
    return httpx.Client(
        base_url=conn["host"], headers={"Authorization": "Bearer " + conn["password"]}
    )


def test_first_creates_a_repo(predibase_emulator):
    with _client() as client:
        assert client.post("/repos", json={"name": "mine"}).status_code == 200
    predibase_emulator.admin.add_fault("status", status=503)


def test_second_starts_clean(predibase_emulator):
    with _client() as client:
        assert client.get("/repos").json() == {"data": []}
        assert client.get("/models").status_code == 200  # the fault is gone too


def test_profile_comes_from_the_ini_file(predibase_emulator):
    assert predibase_emulator.admin.state()["profile"]["name"] == "instant"


def test_env_var_is_removed_after_the_fixture():
    assert "AIRFLOW_CONN_PREDIBASE_DEFAULT" not in os.environ
"""


def test_a_users_suite_gets_fixtures_with_isolation(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AIRFLOW_CONN_PREDIBASE_DEFAULT", raising=False)
    # The user's suite reads the seed's list shape: its emulator speaks the default dialect,
    # whatever this run's $PREDIBASE_EMULATOR_DIALECT says.
    monkeypatch.delenv("PREDIBASE_EMULATOR_DIALECT", raising=False)
    pytester.makeini(
        "[pytest]\npredibase_emulator_profile = instant\n"
        "asyncio_default_fixture_loop_scope = function\n"
    )
    pytester.makepyfile(test_user=USER_TESTS)
    result = pytester.runpytest("-p", "no:cacheprovider", "-q")
    result.assert_outcomes(passed=4)


DIALECT_TESTS = """
def test_the_dialect(predibase_emulator, predibase_emulator_app):
    assert predibase_emulator.config.dialect == "{expected}"
    assert predibase_emulator_app.app.config.dialect == "{expected}"
"""


@pytest.mark.parametrize(("env", "expected"), [(None, "platform"), ("spec", "spec")])
def test_the_dialect_comes_from_the_env_var_else_the_ini_file(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, env: str | None, expected: str
) -> None:
    monkeypatch.delenv("PREDIBASE_EMULATOR_DIALECT", raising=False)
    if env is not None:
        monkeypatch.setenv("PREDIBASE_EMULATOR_DIALECT", env)
    pytester.makeini(
        "[pytest]\npredibase_emulator_dialect = platform\n"
        "asyncio_default_fixture_loop_scope = function\n"
    )
    pytester.makepyfile(test_dialect=DIALECT_TESTS.format(expected=expected))
    result = pytester.runpytest("-p", "no:cacheprovider", "-q")
    result.assert_outcomes(passed=1)
