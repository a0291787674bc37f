"""PredibaseHook: an Airflow connection turned into a Predibase client. Nothing else.

Connection fields (docs/connection.md has examples of every form):

| field                  | meaning                                                          |
| ---------------------- | ---------------------------------------------------------------- |
| password               | API token (`pb_...`); registered with the secrets masker on read |
| host (+ port, schema)  | control plane; a full URL, or a bare host (see `control_url`)    |
| extra `tenant_id`      | tenant short code, needed for deployments and serving calls      |
| extra `serving_url`    | serving base (default https://serving.app.predibase.com)          |
| extra `timeout`        | seconds per request (default 30)                                 |
| extra `max_retries`    | retries after the first attempt (default 4)                      |
| extra `dialect`        | `auto` (default: probe once), `spec` or `platform`               |
| extra `max_requests_per_second` | request budget per host and token and process (20; 0: off) |
| extra `base_url`       | legacy: the control URL, read only when host is empty            |

Extras may also carry the UI's `extra__predibase__` prefix. The client is imported inside
the methods: DAG files import hooks constantly, and this module must stay cheap.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from airflow.sdk import BaseHook

if TYPE_CHECKING:
    import httpx

    from airflow_predibase.client import (
        AsyncPredibaseClient,
        ClientSettings,
        PredibaseClient,
        RetryPolicy,
    )
    from airflow_predibase.client._dialect import DialectChoice

_PREFIX = "extra__predibase__"


def _extras(conn: Any) -> dict[str, Any]:
    return {
        key.removeprefix(_PREFIX): value
        for key, value in (conn.extra_dejson or {}).items()
        if value not in (None, "")
    }


async def _amask_secret(secret: str) -> None:
    # The sync mask_secret tells the supervisor with a blocking send, which can deadlock in
    # the triggerer's event loop. Older Task SDKs have no async variant: mask locally then.
    try:
        from airflow.sdk.log import amask_secret
    except ImportError:
        from airflow.sdk.log import mask_secret

        mask_secret(secret)
    else:
        await amask_secret(secret)


async def _aget_connection(conn_id: str) -> Any:
    """Airflow's async connection lookup, portable across 3.1-3.3.

    The compat helper avoids 3.1's `aget_connection`, which masks synchronously and can
    deadlock in the triggerer. `airflow dags test` runs triggers without an async path to
    connections stored in the metadata DB; there the sync lookup, in a thread, finds them.
    """
    from airflow.providers.common.compat.connection import get_async_connection
    from airflow.providers.common.compat.sdk import AirflowNotFoundException

    try:
        return await get_async_connection(conn_id)
    except AirflowNotFoundException:
        from asgiref.sync import sync_to_async

        return await sync_to_async(BaseHook.get_connection)(conn_id)


class ConnectionSettingsError(ValueError):
    """A connection that cannot become client settings.

    `reason` does not name the connection: when Airflow tests a form, the hook sees a random
    temporary conn_id, not the one being edited, so `test_connection` words it without one.
    """

    def __init__(self, conn_id: str | None, reason: str) -> None:
        self.reason = reason
        super().__init__(f"connection {conn_id!r} {reason}")


def control_url(conn: Any, extras: dict[str, Any]) -> str:
    """The control base URL: host/port/schema, else the legacy extra `base_url`, else the default.

    `host` may be a full URL (`https://api.app.predibase.com/v2`) or a bare host. A URI
    connection splits a URL into host, port and schema (the path), so they are put back
    together here. A bare host gets https, except a loopback host (the local emulator),
    which gets http; the path defaults to `/v2`. The extra `base_url` is what the form's
    second URL field used to set; it is still read, for connections that only have it.
    """
    from airflow_predibase.client.settings import DEFAULT_BASE_URL, _is_loopback

    host = (conn.host or "").strip()
    if not host:
        return str(extras.get("base_url") or DEFAULT_BASE_URL)
    scheme, sep, rest = host.partition("://")
    if not sep:
        rest = host
        hostname = urlsplit(f"//{host}").hostname or ""
        scheme = "http" if _is_loopback(hostname) else "https"
    netloc, _, path = rest.partition("/")
    in_url = urlsplit(f"//{netloc}").port
    if conn.port and in_url is None:
        netloc = f"{netloc}:{conn.port}"
    elif conn.port and in_url != conn.port:
        raise ConnectionSettingsError(
            getattr(conn, "conn_id", None),
            f"has port {in_url} in its URL and a different Port, {conn.port}; clear one of them",
        )
    path = path.strip("/") or (conn.schema or "").strip("/") or "v2"
    return f"{scheme}://{netloc}/{path}"


def settings_from_connection(conn: Any) -> ClientSettings:
    """ClientSettings for an Airflow Connection. Mask the token before calling this."""
    from airflow_predibase.client.settings import (
        DEFAULT_MAX_RETRIES,
        DEFAULT_SERVING_URL,
        DEFAULT_TIMEOUT,
        DIALECTS,
        ClientSettings,
        default_request_budget,
    )

    token = conn.password
    if not token:
        raise ConnectionSettingsError(
            conn.conn_id,
            "has no API token: put the Predibase token (pb_...) in the API token field "
            "(the connection's password)",
        )
    extras = _extras(conn)
    try:
        timeout = float(extras.get("timeout", DEFAULT_TIMEOUT))
        max_retries = int(extras.get("max_retries", DEFAULT_MAX_RETRIES))
    except (TypeError, ValueError) as exc:
        raise ConnectionSettingsError(
            conn.conn_id, f"has a bad timeout or max_retries ({exc})"
        ) from None
    dialect = str(extras.get("dialect", "auto")).strip().lower()
    if dialect not in DIALECTS:
        raise ConnectionSettingsError(
            conn.conn_id,
            f"has a bad extra dialect {extras['dialect']!r}: use one of {', '.join(DIALECTS)}",
        )
    base_url = control_url(conn, extras)
    rate = _request_budget(conn.conn_id, extras)
    return ClientSettings(
        token=token,
        base_url=base_url,
        serving_url=str(extras.get("serving_url", DEFAULT_SERVING_URL)),
        tenant_id=extras.get("tenant_id"),
        timeout=timeout,
        max_retries=max_retries,
        dialect=dialect,
        max_requests_per_second=default_request_budget(base_url) if rate is None else rate,
    )


def _request_budget(conn_id: str | None, extras: dict[str, Any]) -> float | None:
    """The extra `max_requests_per_second`: a number, `0` or `off` to switch it off."""
    value = extras.get("max_requests_per_second")
    if value is None or (isinstance(value, str) and not value.strip()):
        return None  # not set (an empty form field too): the default
    if isinstance(value, str) and value.strip().lower() == "off":
        return 0.0
    try:
        rate = float(value)
    except (TypeError, ValueError):
        rate = math.nan
    if isinstance(value, bool) or not (math.isfinite(rate) and rate >= 0):
        raise ConnectionSettingsError(
            conn_id,
            f"has a bad extra max_requests_per_second {value!r}: use requests per second "
            "(> 0), or 0 to switch the request budget off",
        )
    return rate


class PredibaseHook(BaseHook):
    """Predibase clients configured from an Airflow connection.

    Args:
        predibase_conn_id: the connection to use (type `predibase`).
        http_client: seam for tests: an `httpx.Client` (e.g. over `httpx.MockTransport`)
            that `get_client()` sends through instead of its own.
        async_http_client: seam for tests: an `httpx.AsyncClient` that
            `get_async_client()` uses instead of the shared per-event-loop client.

    No connection is read and nothing is sent until a method needs it.
    """

    conn_name_attr = "predibase_conn_id"
    default_conn_name = "predibase_default"
    conn_type = "predibase"
    hook_name = "Predibase"

    def __init__(
        self,
        predibase_conn_id: str = default_conn_name,
        *,
        http_client: httpx.Client | None = None,
        async_http_client: httpx.AsyncClient | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.predibase_conn_id = predibase_conn_id
        self._http_client = http_client
        self._async_http_client = async_http_client
        self._settings: ClientSettings | None = None
        self._client: PredibaseClient | None = None
        self._dialect_logged = False

    def __repr__(self) -> str:
        return f"{type(self).__name__}(predibase_conn_id={self.predibase_conn_id!r})"

    @classmethod
    def get_connection(cls, conn_id: str) -> Any:
        """Airflow's lookup; a missing connection fails naming it and the two ways to add it."""
        from airflow.providers.common.compat.sdk import AirflowNotFoundException

        try:
            return super().get_connection(conn_id)
        except AirflowNotFoundException:
            raise AirflowNotFoundException(
                f"The Predibase connection {conn_id!r} is not defined. Add it as an "
                f"environment variable, e.g. AIRFLOW_CONN_{conn_id.upper()}="
                f"'predibase://:pb_your_token@?tenant_id=your_tenant', or with "
                f"`airflow connections add {conn_id} --conn-type predibase "
                f'--conn-password pb_your_token --conn-extra \'{{"tenant_id": "your_tenant"}}\'`'
                " (docs/connection.md lists every field)."
            ) from None

    def get_settings(self) -> ClientSettings:
        """Client settings from the connection (read once per hook)."""
        if self._settings is None:
            from airflow.sdk.log import mask_secret

            conn = self.get_connection(self.predibase_conn_id)
            if conn.password:
                mask_secret(conn.password)
            self._settings = settings_from_connection(conn)
        return self._settings

    def get_client(self) -> PredibaseClient:
        """The blocking client, for workers (one per hook)."""
        if self._client is None:
            from airflow_predibase.client import PredibaseClient

            self._client = PredibaseClient(
                self.get_settings(), http_client=self._http_client, on_dialect=self._log_dialect
            )
            _ = self._client.dialect  # logs now if known (set, or detected earlier); else on use
        return self._client

    def _log_dialect(self, choice: DialectChoice) -> None:
        """Once per hook (a task's): which API dialect its clients speak, and why."""
        if not self._dialect_logged:
            self._dialect_logged = True
            self.log.info("Predibase API dialect: %s", choice)

    def get_conn(self) -> PredibaseClient:
        return self.get_client()

    async def get_async_client(self, retry: RetryPolicy | None = None) -> AsyncPredibaseClient:
        """An async client for triggers, on the event loop's shared HTTP client.

        Uses Airflow's async connection lookup (a sync lookup raises inside the triggerer's
        loop). Cheap to call per trigger run; closing it never closes the shared client.
        `retry` defaults to the connection's `max_retries`; a trigger that got a policy as
        kwargs passes `RetryPolicy.from_dict(...)`.
        """
        from airflow_predibase.client import AsyncPredibaseClient
        from airflow_predibase.client._pool import shared_async_http

        if self._settings is None:
            conn = await _aget_connection(self.predibase_conn_id)
            if conn.password:
                await _amask_secret(conn.password)
            self._settings = settings_from_connection(conn)
        if self._async_http_client is not None:
            http_client, limiter = self._async_http_client, None
        else:
            http_client, limiter = shared_async_http()
        client = AsyncPredibaseClient(
            self._settings,
            http_client=http_client,
            retry=retry,
            limiter=limiter,
            on_dialect=self._log_dialect,
        )
        _ = client.dialect  # logs now if known (set, or detected earlier); else on use
        return client

    def test_connection(self) -> tuple[bool, str]:
        """One cheap authenticated call (GET /models), without retries. Never raises."""
        from airflow_predibase.client import PredibaseClient, RetryPolicy, errors

        try:
            settings = self.get_settings()
            client = PredibaseClient(
                settings, http_client=self._http_client, retry=RetryPolicy(max_attempts=1)
            )
            with client:
                models = client.list_models()
        except ConnectionSettingsError as exc:
            # Airflow's Test button hands the hook a random temporary conn_id: never show it.
            return False, f"The connection being tested {exc.reason}"
        except errors.AuthenticationError as exc:
            return False, f"Predibase rejected the API token (HTTP 401: {exc.message})"
        except errors.PermissionDeniedError as exc:
            return False, f"The API token may not list models (HTTP 403: {exc.message})"
        except errors.APIConnectionError as exc:
            return False, f"Could not reach {settings.base_url}: {exc.message}"
        except Exception as exc:  # the UI shows the message; a traceback helps nobody there
            return False, f"{type(exc).__name__}: {exc}"
        return True, f"Connected to {settings.base_url}: {len(models)} base models available"
