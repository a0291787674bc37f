"""PredibaseHook: connection -> client settings, sync and async, without a metadata DB."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys

import httpx
import pytest

from airflow_predibase.hooks.predibase import PredibaseHook, control_url

TOKEN = "pb_HOOK_TOKEN_never_leak_41d7"


def answer(status: int, body: object) -> httpx.MockTransport:
    return httpx.MockTransport(lambda request: httpx.Response(status, json=body))


def set_conn(monkeypatch: pytest.MonkeyPatch, conn_id: str, value: str | dict) -> None:
    text = value if isinstance(value, str) else json.dumps(value)
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", text)


def test_uri_connection_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    set_conn(
        monkeypatch,
        "pb_uri",
        f"predibase://:{TOKEN}@api.app.predibase.com/v2?tenant_id=abc123&timeout=12&max_retries=2",
    )
    settings = PredibaseHook("pb_uri").get_settings()
    assert settings.token == TOKEN
    assert settings.base_url == "https://api.app.predibase.com/v2"
    assert settings.serving_url == "https://serving.app.predibase.com"
    assert (settings.tenant_id, settings.timeout, settings.max_retries) == ("abc123", 12.0, 2)


def test_json_connection_for_the_local_emulator(monkeypatch: pytest.MonkeyPatch) -> None:
    set_conn(
        monkeypatch,
        "pb_json",
        {
            "conn_type": "predibase",
            "host": "http://127.0.0.1:8080/v2",
            "password": TOKEN,
            "extra": {"tenant_id": "t1", "serving_url": "http://127.0.0.1:8080/serving"},
        },
    )
    settings = PredibaseHook("pb_json").get_settings()
    assert settings.base_url == "http://127.0.0.1:8080/v2"
    assert settings.serving_url == "http://127.0.0.1:8080/serving"
    assert settings.tenant_id == "t1"


def test_default_connection_and_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    set_conn(monkeypatch, "predibase_default", f"predibase://:{TOKEN}@")
    hook = PredibaseHook()
    settings = hook.get_settings()
    assert hook.predibase_conn_id == "predibase_default"
    assert settings.base_url == "https://api.app.predibase.com/v2"
    assert (settings.timeout, settings.max_retries, settings.tenant_id) == (30.0, 4, None)


def test_prefixed_extras_from_the_ui(monkeypatch: pytest.MonkeyPatch) -> None:
    set_conn(
        monkeypatch,
        "pb_prefixed",
        {
            "conn_type": "predibase",
            "password": TOKEN,
            "extra": {"extra__predibase__tenant_id": "t9", "extra__predibase__timeout": "5"},
        },
    )
    settings = PredibaseHook("pb_prefixed").get_settings()
    assert (settings.tenant_id, settings.timeout) == ("t9", 5.0)


class Conn:
    """Just the fields control_url reads."""

    def __init__(self, host: str = "", port: int | None = None, schema: str = "") -> None:
        self.host, self.port, self.schema = host, port, schema


@pytest.mark.parametrize(
    ("conn", "extras", "expected"),
    [
        (Conn(), {}, "https://api.app.predibase.com/v2"),
        (Conn("https://api.app.predibase.com/v2"), {}, "https://api.app.predibase.com/v2"),
        (Conn("api.app.predibase.com", schema="v2"), {}, "https://api.app.predibase.com/v2"),
        (Conn("api.example.com"), {}, "https://api.example.com/v2"),
        (Conn("gw.example.com", 8443, "api/v2"), {}, "https://gw.example.com:8443/api/v2"),
        # What URI connections turn `predibase://http://:tok@127.0.0.1:8080/v2` into:
        (Conn("http://127.0.0.1", 8080, "v2"), {}, "http://127.0.0.1:8080/v2"),
        # A bare loopback host is the emulator: plain http.
        (Conn("127.0.0.1", 8080, "v2"), {}, "http://127.0.0.1:8080/v2"),
        (Conn("localhost:9000"), {}, "http://localhost:9000/v2"),
        (Conn("[::1]", 8080), {}, "http://[::1]:8080/v2"),
        # The same port in the URL and in Port is no conflict.
        (Conn("http://127.0.0.1:8080/v2", 8080), {}, "http://127.0.0.1:8080/v2"),
        # The form's Port with a full URL: what Airflow 3.3.2's list Test button needs.
        (Conn("https://api.app.predibase.com/v2", 443), {}, "https://api.app.predibase.com:443/v2"),
        # The legacy extra `base_url` (an earlier form's second URL field): read when Host
        # is empty; Host, the one URL field the form shows now, wins.
        (Conn(), {"base_url": "http://127.0.0.1:1/v2"}, "http://127.0.0.1:1/v2"),
        (
            Conn("https://api.example.com/v2"),
            {"base_url": "http://127.0.0.1:1/v2"},
            "https://api.example.com/v2",
        ),
    ],
)
def test_control_url(conn: Conn, extras: dict, expected: str) -> None:
    assert control_url(conn, extras) == expected


def test_a_legacy_base_url_extra_still_connects(monkeypatch: pytest.MonkeyPatch) -> None:
    set_conn(
        monkeypatch,
        "pb_legacy",
        {"conn_type": "predibase", "password": TOKEN, "extra": {"base_url": "http://[::1]:9/v2"}},
    )
    assert PredibaseHook("pb_legacy").get_settings().base_url == "http://[::1]:9/v2"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("predibase://api.app.predibase.com/v2", "no API token"),
        (f"predibase://:{TOKEN}@http%3A%2F%2Fapi.example.com%2Fv2", "loopback"),
        (f"predibase://:{TOKEN}@api.example.com/v2?timeout=soon", "timeout"),
        (f"predibase://:{TOKEN}@http%3A%2F%2F127.0.0.1%3A8080%2Fv2:9090", "different Port"),
    ],
)
def test_bad_connections_give_clear_errors(
    monkeypatch: pytest.MonkeyPatch, value: str, message: str
) -> None:
    set_conn(monkeypatch, "pb_bad", value)
    with pytest.raises(ValueError, match=message) as info:
        PredibaseHook("pb_bad").get_settings()
    assert TOKEN not in str(info.value)


def test_the_token_is_masked_as_soon_as_it_is_read(monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow.sdk import Connection
    from airflow.sdk._shared.secrets_masker import redact

    token = "pb_MASK_ME_" + "9f2c61e0"
    assert redact(token) == token
    # Built in memory, so Airflow's own lookup (which masks passwords too) is not involved.
    conn = Connection(conn_id="pb_mask", conn_type="predibase", password=token)
    monkeypatch.setattr(PredibaseHook, "get_connection", classmethod(lambda cls, conn_id: conn))
    PredibaseHook("pb_mask").get_settings()
    assert redact(f"Authorization: Bearer {token}") == "Authorization: Bearer ***"


def test_repr_never_shows_the_token(monkeypatch: pytest.MonkeyPatch) -> None:
    set_conn(monkeypatch, "pb_repr", f"predibase://:{TOKEN}@?tenant_id=t")
    hook = PredibaseHook("pb_repr")
    hook.get_client()
    assert TOKEN not in repr(hook)
    assert TOKEN not in repr(hook.get_client())
    assert repr(hook) == "PredibaseHook(predibase_conn_id='pb_repr')"


def test_no_io_until_needed() -> None:
    hook = PredibaseHook("pb_not_defined_anywhere")  # would raise if it looked the connection up
    assert hook._settings is None
    assert hook._client is None


def test_get_client_is_cached_per_hook(monkeypatch: pytest.MonkeyPatch) -> None:
    set_conn(monkeypatch, "pb_cache", f"predibase://:{TOKEN}@")
    hook = PredibaseHook("pb_cache")
    assert hook.get_client() is hook.get_client() is hook.get_conn()


# -- test_connection -----------------------------------------------------------------------


def test_connection_reports_a_bad_token(monkeypatch: pytest.MonkeyPatch) -> None:
    set_conn(monkeypatch, "pb_401", f"predibase://:{TOKEN}@")
    http = httpx.Client(transport=answer(401, {"error": "invalid API token"}))
    ok, message = PredibaseHook("pb_401", http_client=http).test_connection()
    assert ok is False
    assert "401" in message
    assert "token" in message
    assert TOKEN not in message


def test_connection_reports_an_unreachable_host(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("[Errno 111] Connection refused", request=request)

    set_conn(monkeypatch, "pb_down", f"predibase://:{TOKEN}@127.0.0.1:9/v2")
    http = httpx.Client(transport=httpx.MockTransport(refuse))
    ok, message = PredibaseHook("pb_down", http_client=http).test_connection()
    assert ok is False
    assert "Could not reach http://127.0.0.1:9/v2" in message


def test_connection_reports_a_missing_connection() -> None:
    ok, message = PredibaseHook("pb_missing_conn").test_connection()
    assert ok is False
    assert "pb_missing_conn" in message


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("predibase://api.app.predibase.com/v2", "has no API token: put the Predibase token"),
        (f"predibase://:{TOKEN}@?max_retries=many", "has a bad timeout or max_retries"),
    ],
)
def test_connection_never_names_airflows_temporary_conn_id(
    monkeypatch: pytest.MonkeyPatch, value: str, reason: str
) -> None:
    # The UI's Test button: Airflow stores the form under a random conn_id (here Mk1NMUwI)
    # and builds the hook with it; the id being edited never reaches the hook.
    set_conn(monkeypatch, "Mk1NMUwI", value)
    ok, message = PredibaseHook("Mk1NMUwI").test_connection()
    assert ok is False
    assert message.startswith(f"The connection being tested {reason}")
    assert "Mk1NMUwI" not in message
    assert TOKEN not in message


def test_a_task_still_names_its_connection(monkeypatch: pytest.MonkeyPatch) -> None:
    set_conn(monkeypatch, "pb_tokenless", "predibase://api.app.predibase.com/v2")
    with pytest.raises(ValueError, match="connection 'pb_tokenless' has no API token"):
        PredibaseHook("pb_tokenless").get_settings()


def test_connection_succeeds(monkeypatch: pytest.MonkeyPatch) -> None:
    set_conn(monkeypatch, "pb_ok", f"predibase://:{TOKEN}@")
    http = httpx.Client(transport=answer(200, {"data": [{"name": "llama"}, {"name": "qwen"}]}))
    assert PredibaseHook("pb_ok", http_client=http).test_connection() == (
        True,
        "Connected to https://api.app.predibase.com/v2: 2 base models available",
    )


# -- async ---------------------------------------------------------------------------------


async def test_async_client_uses_the_async_connection_lookup(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    set_conn(monkeypatch, "pb_async", f"predibase://:{TOKEN}@?tenant_id=t")

    def forbid(*args: object) -> None:
        raise AssertionError("sync get_connection inside the event loop")

    monkeypatch.setattr(PredibaseHook, "get_connection", classmethod(forbid))
    http = httpx.AsyncClient(transport=answer(200, {"data": [{"name": "llama"}]}))
    client = await PredibaseHook("pb_async", async_http_client=http).get_async_client()
    assert [m.name for m in await client.list_models()] == ["llama"]
    await client.close()
    assert not http.is_closed  # never closes what it was given


async def test_hooks_in_one_loop_share_one_http_client(monkeypatch: pytest.MonkeyPatch) -> None:
    set_conn(monkeypatch, "pb_a", f"predibase://:{TOKEN}@?tenant_id=a")
    set_conn(monkeypatch, "pb_b", f"predibase://:{TOKEN}x@127.0.0.1:8080/v2?tenant_id=b")
    first = await PredibaseHook("pb_a").get_async_client()
    second = await PredibaseHook("pb_b").get_async_client()
    assert first._http is second._http
    assert first._limiter is second._limiter
    # Shared transport, per-connection settings.
    assert first.settings.base_url != second.settings.base_url
    await first.close()
    assert not second._http.is_closed


async def test_a_trigger_can_pass_its_retry_policy(monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow_predibase.client import RetryPolicy

    set_conn(monkeypatch, "pb_policy", f"predibase://:{TOKEN}@?max_retries=7")
    hook = PredibaseHook("pb_policy")
    assert (await hook.get_async_client()).retry_policy.max_attempts == 8
    policy = RetryPolicy.from_dict({"max_attempts": 2, "total_timeout": 30})
    assert (await hook.get_async_client(retry=policy)).retry_policy is policy


def test_different_loops_get_different_http_clients(monkeypatch: pytest.MonkeyPatch) -> None:
    set_conn(monkeypatch, "pb_loops", f"predibase://:{TOKEN}@")

    async def shared() -> httpx.AsyncClient:
        return (await PredibaseHook("pb_loops").get_async_client())._http

    first, second = asyncio.run(shared()), asyncio.run(shared())
    assert first is not second


def test_hook_module_imports_no_client_code() -> None:
    code = (
        "import sys\n"
        "import airflow_predibase.hooks.predibase\n"
        "loaded = [m for m in ('airflow_predibase.client._sync', 'airflow_predibase.client.models')"
        " if m in sys.modules]\n"
        "assert not loaded, loaded\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr


def test_provider_info_points_at_this_hook() -> None:
    from airflow_predibase.get_provider_info import get_provider_info

    conn_type = get_provider_info()["connection-types"][0]
    assert conn_type["hook-class-name"] == f"{PredibaseHook.__module__}.{PredibaseHook.__name__}"
    assert conn_type["connection-type"] == PredibaseHook.conn_type
    assert PredibaseHook.conn_name_attr == "predibase_conn_id"
    assert PredibaseHook.default_conn_name == "predibase_default"
