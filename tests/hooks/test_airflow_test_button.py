"""The connection Test button, on a real Airflow 3.3 api-server (about 20 s to start).

The list's Test button (`TestConnectionButton` in Airflow 3.3.2's UI) posts the stored row
back to `POST /api/v2/connections/test` as it was listed: the password masked as `***`, and
`port: Number(row.port)`, which is `0` when no port is stored. The api-server reuses the
stored token only when host and port match the stored ones, and its check counts 0 as a
port (`_same_endpoint` in airflow/api_fastapi/core_api/routes/public/connections.py): a
connection without a port gets "400 Bad Request" before any provider code runs. With a
port stored, the button works. docs/connection.md says so; these tests keep it true.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from airflow_predibase.emulator import EmulatorServer
from tests.system.harness import AirflowStack, StackSettings
from tests.system.harness.processes import bin_path
from tests.taskkit import AIRFLOW_V_3_3_PLUS

#: The Test button, the REST route behind it and its port check are Airflow 3.3's (the UI
#: this provider was tried in); `make test-compat` runs the unit suites on 3.1 and 3.2.
pytestmark = pytest.mark.skipif(
    not AIRFLOW_V_3_3_PLUS,
    reason="the UI's Test button is checked on Airflow 3.3 (docs/connection.md); "
    "older lines start the api-server differently",
)


def list_test_body(row: dict[str, Any]) -> dict[str, Any]:
    """What the list's Test button sends for one row of `GET /api/v2/connections`."""
    return {
        "conn_type": row["conn_type"],
        "connection_id": row["connection_id"],
        "description": row["description"] or "",
        "extra": row["extra"] or "{}",
        "host": row["host"] or "",
        "login": row["login"] or "",
        "password": row["password"] or "",
        "port": row["port"] or 0,  # JavaScript's Number(null) is 0
        "schema": row["schema"] or "",
    }


@pytest.fixture(scope="module")
def emulator() -> Iterator[EmulatorServer]:
    with EmulatorServer() as server:
        yield server


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AirflowStack]:
    workdir = tmp_path_factory.mktemp("test-button")
    (workdir / "dags").mkdir()
    settings = StackSettings(extra_env={"AIRFLOW__CORE__TEST_CONNECTION": "Enabled"})
    stack = AirflowStack(workdir, workdir / "dags", settings=settings)
    try:
        stack.migrate()
        stack.start_component("api-server")
        stack.wait_healthy(timeout=120, components=["metadatabase"])
        yield stack
    finally:
        stack.stop()


def add(api: AirflowStack, connection_id: str, **fields: Any) -> dict[str, Any]:
    body = {"connection_id": connection_id, "conn_type": "predibase", **fields}
    api.rest("POST", "/connections", json=body)
    [row] = [
        r
        for r in api.rest("GET", "/connections", params={"limit": 100})["connections"]
        if r["connection_id"] == connection_id
    ]
    return dict(row)


def press_test(api: AirflowStack, body: dict[str, Any]) -> httpx.Response:
    return api.api.post("/api/v2/connections/test", json=body)


def test_the_list_button_works_for_a_connection_with_a_port(
    api: AirflowStack, emulator: EmulatorServer
) -> None:
    for conn_id, host in [("pb_bare", "127.0.0.1"), ("pb_url", emulator.control_url)]:
        row = add(api, conn_id, host=host, port=emulator.port, password=emulator.token)
        assert row["password"] == "***"
        answer = press_test(api, list_test_body(row))
        assert answer.status_code == 200, answer.text
        assert answer.json() == {
            "status": True,
            "message": f"Connected to {emulator.control_url}: 6 base models available",
        }


@pytest.mark.skipif(
    AIRFLOW_V_3_3_PLUS is False,
    reason="Airflow 3.3's check (_same_endpoint); before 3.3 the api-server reuses the stored "
    "token whatever the port, so the list's Test button works without one",
)
def test_without_a_stored_port_the_list_button_is_refused_by_airflow(
    api: AirflowStack, emulator: EmulatorServer
) -> None:
    row = add(api, "pb_no_port", host=emulator.control_url, password=emulator.token)
    answer = press_test(api, list_test_body(row))
    assert answer.status_code == 400
    assert "differs from the stored connection" in answer.json()["detail"]
    # The CLI the docs give instead reads the stored connection and works.
    done = subprocess.run(
        [bin_path("airflow"), "connections", "test", "pb_no_port"],
        env=api.env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "Connection success!" in done.stdout


def test_an_unsaved_form_without_a_token_names_no_temporary_id(
    api: AirflowStack, emulator: EmulatorServer
) -> None:
    body = {
        "connection_id": "pb_being_edited",
        "conn_type": "predibase",
        "host": emulator.control_url,
        "extra": "{}",
    }
    answer = press_test(api, body)
    assert answer.status_code == 200, answer.text
    status, message = answer.json()["status"], answer.json()["message"]
    assert status is False
    assert message.startswith("The connection being tested has no API token"), message
    assert "connection '" not in message  # no id: the hook only sees Airflow's random one
