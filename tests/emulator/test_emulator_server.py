"""EmulatorServer as a context manager: ports, URLs, the connection, clean stops."""

from __future__ import annotations

import json

import httpx
import pytest

from airflow_predibase.emulator import EmulatorConfig, EmulatorServer
from airflow_predibase.emulator.errors import is_serving_path


def test_port_zero_gives_a_real_port_and_matching_urls() -> None:
    with EmulatorServer(token="pb_custom", tenant="t1") as server:
        assert server.port > 0
        assert server.url == f"http://127.0.0.1:{server.port}"
        assert server.deployment_url("d") == f"{server.url}/t1/deployments/v2/llms/d"
        connection = json.loads(server.connection_json())
        assert connection["password"] == "pb_custom"
        assert connection["extra"] == {"tenant_id": "t1", "serving_url": server.url}
        assert httpx.get(f"{server.url}/__emulator__/health").status_code == 200
        url = server.url
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{url}/__emulator__/health")


def test_a_config_and_overrides_combine() -> None:
    server = EmulatorServer(EmulatorConfig(tenant="base"), profile="instant")
    assert (server.tenant, server.config.profile.name) == ("base", "instant")
    with pytest.raises(RuntimeError, match="not started"):
        _ = server.app


def test_starting_twice_is_refused_and_stopping_twice_is_harmless() -> None:
    server = EmulatorServer().start()
    try:
        with pytest.raises(RuntimeError, match="already started"):
            server.start()
    finally:
        server.stop()
        server.stop()


@pytest.mark.parametrize(
    ("path", "serving"),
    [
        ("/acme/deployments/v2/llms/dep/generate", True),
        ("/acme/deployments/v2/llms/dep", True),
        ("/v2/deployments/v2", False),
        ("/v2/finetuning/jobs", False),
    ],
)
def test_plane_detection_for_error_shapes(path: str, serving: bool) -> None:
    assert is_serving_path(path) is serving
