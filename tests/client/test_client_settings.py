"""Settings: plain http only to loopback; URLs for both planes."""

from __future__ import annotations

import pytest
from predibase_fakes import Script, reply, sync_client

from airflow_predibase.client import ClientSettings


@pytest.mark.parametrize(
    "url",
    [
        "http://api.app.predibase.com/v2",
        "http://10.0.0.5:8080/v2",
        "http://example.com",
        "http://127.0.0.1.example.com/v2",
    ],
)
@pytest.mark.parametrize("field", ["base_url", "serving_url"])
def test_plain_http_to_a_remote_host_is_refused(field: str, url: str) -> None:
    with pytest.raises(ValueError, match="loopback") as info:
        ClientSettings(token="pb_x", **{field: url})
    assert "https" in str(info.value)


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/v2",
        "http://localhost:8080/v2",
        "http://[::1]:8080/v2",
        "https://api.example.com/v2",
    ],
)
def test_loopback_http_and_any_https_are_accepted(url: str) -> None:
    settings = ClientSettings(token="pb_x", base_url=url + "/", serving_url=url)
    assert settings.base_url == url


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ({"token": ""}, "token"),
        ({"timeout": 0}, "timeout"),
        ({"max_retries": -1}, "max_retries"),
        ({"base_url": "ftp://x"}, "http"),
    ],
)
def test_nonsense_settings_are_refused(bad: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ClientSettings(**({"token": "pb_x"} | bad))


def test_requests_go_to_the_emulator_over_loopback_http() -> None:
    settings = ClientSettings(
        token="pb_x",
        base_url="http://127.0.0.1:8080/v2",
        serving_url="http://127.0.0.1:8080/serving",
        tenant_id="t",
    )
    script = Script(reply(200, {"data": []}), reply(200))
    client = sync_client(script, settings=settings)
    client.list_models()
    client.health("my dep")
    assert [str(r.url) for r in script.requests] == [
        "http://127.0.0.1:8080/v2/models",
        "http://127.0.0.1:8080/serving/t/deployments/v2/llms/my%20dep/health",
    ]
    assert client.deployment_url("d") == "http://127.0.0.1:8080/serving/t/deployments/v2/llms/d"


def test_serving_calls_need_a_tenant() -> None:
    client = sync_client(Script(), settings=ClientSettings(token="pb_x", dialect="spec"))
    with pytest.raises(ValueError, match="tenant_id"):
        client.health("d")


def test_path_segments_are_escaped() -> None:
    script = Script(reply(200, {"name": "a/b", "status": "connected"}))
    sync_client(script).get_dataset("a/b")
    assert script.requests[0].url.raw_path == b"/v2/datasets/a%2Fb"


def test_client_closes_only_what_it_created() -> None:
    import httpx
    from predibase_fakes import SETTINGS

    from airflow_predibase.client import PredibaseClient

    mine = httpx.Client(transport=httpx.MockTransport(Script()))
    with PredibaseClient(SETTINGS, http_client=mine):
        pass
    assert not mine.is_closed
    own = PredibaseClient(SETTINGS)
    own.close()
    assert own._http.is_closed


def test_user_agent_names_the_provider_version() -> None:
    from airflow_predibase import __version__

    script = Script(reply(200, {"data": []}))
    sync_client(script).list_models()
    assert script.requests[0].headers["user-agent"] == f"airflow-provider-predibase/{__version__}"
