"""`EmulatorServer`: a real HTTP emulator on loopback, in a background thread.

    with EmulatorServer(profile="instant") as emulator:
        client = PredibaseClient(token=emulator.token, base_url=emulator.control_url, ...)

The socket is bound before the thread starts, so port 0 gives a free port that is known
(and accepting connections) the moment `start()` returns.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from types import TracebackType
from typing import Any

import uvicorn

from airflow_predibase.emulator.admin_client import AdminClient
from airflow_predibase.emulator.app import EmulatorApp, create_app
from airflow_predibase.emulator.clock import Clock
from airflow_predibase.emulator.config import EmulatorConfig

_START_TIMEOUT = 15.0


def connection_dict(url: str, token: str, tenant: str) -> dict[str, Any]:
    """The Airflow connection (JSON form) that points the provider at an emulator."""
    return {
        "conn_type": "predibase",
        "host": f"{url}/v2",
        "password": token,
        "extra": {"tenant_id": tenant, "serving_url": url},
    }


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening TCP socket; port 0 picks a free one."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    return sock


def uvicorn_config(
    app: EmulatorApp,
    *,
    log_level: str,
    access_log: bool,
    ssl_certfile: str | None = None,
    ssl_keyfile: str | None = None,
) -> uvicorn.Config:
    """uvicorn settings shared by the thread server and the CLI; HTTPS with a certificate."""
    return uvicorn.Config(
        app,
        log_level=log_level,
        access_log=access_log,
        ssl_certfile=ssl_certfile,
        ssl_keyfile=ssl_keyfile,
        lifespan="on",
        # The fault layer must receive uvicorn's own `send` to drop connections: no
        # proxy-header wrapper in between.
        proxy_headers=False,
        timeout_graceful_shutdown=2,
        timeout_keep_alive=30,
        backlog=2048,
    )


class EmulatorServer:
    """A running emulator: `.url`, `.token`, `.tenant`, `.admin`, `.stop()`."""

    def __init__(
        self,
        config: EmulatorConfig | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        clock: Clock | None = None,
        log_level: str = "warning",
        access_log: bool = False,
        ssl_certfile: str | None = None,
        ssl_keyfile: str | None = None,
        **overrides: Any,
    ) -> None:
        """`overrides` are EmulatorConfig fields (token, tenant, profile, state_file, ...).
        With `ssl_certfile` (and `ssl_keyfile`, PEM), it serves HTTPS."""
        if config is None:
            config = EmulatorConfig(**overrides)
        elif overrides:
            config = EmulatorConfig.model_validate({**dict(config), **overrides})
        self.config = config
        self.host = host
        self.port = port
        self._clock = clock
        self._log_level = log_level
        self._access_log = access_log
        self._ssl = {"ssl_certfile": ssl_certfile, "ssl_keyfile": ssl_keyfile}
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._app: EmulatorApp | None = None
        self._admin: AdminClient | None = None

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> EmulatorServer:
        if self._thread is not None:
            raise RuntimeError("emulator already started")
        sock = bind_socket(self.host, self.port)
        self.port = sock.getsockname()[1]
        self._app = create_app(self.config, clock=self._clock)
        server = uvicorn.Server(
            uvicorn_config(
                self._app, log_level=self._log_level, access_log=self._access_log, **self._ssl
            )
        )
        # uvicorn installs signal handlers only in the main thread; this one is not.
        thread = threading.Thread(
            target=server.run,
            kwargs={"sockets": [sock]},
            name=f"predibase-emulator-{self.port}",
            daemon=True,
        )
        self._server, self._thread = server, thread
        thread.start()
        deadline = time.monotonic() + _START_TIMEOUT
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                sock.close()
                self._thread = None
                raise RuntimeError(f"emulator did not start on {self.host}:{self.port}")
            time.sleep(0.005)
        return self

    def stop(self) -> None:
        """Stop serving and release the port (and the state file)."""
        if self._admin is not None:
            self._admin.close()
            self._admin = None
        server, thread = self._server, self._thread
        if server is None or thread is None:
            return
        server.should_exit = True
        thread.join(timeout=5)
        if thread.is_alive():
            server.force_exit = True
            thread.join(timeout=5)
        self._server = self._thread = None

    def __enter__(self) -> EmulatorServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- where it is --------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """Root URL, e.g. http://127.0.0.1:54321 (also the serving base)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        scheme = "https" if self._ssl["ssl_certfile"] else "http"
        return f"{scheme}://{host}:{self.port}"

    @property
    def control_url(self) -> str:
        """Control plane base, `<url>/v2`."""
        return f"{self.url}/v2"

    @property
    def serving_url(self) -> str:
        """Serving plane host; deployments live under `<serving_url>/<tenant>/...`."""
        return self.url

    @property
    def token(self) -> str:
        return self.config.token

    @property
    def tenant(self) -> str:
        return self.config.tenant

    def deployment_url(self, deployment: str) -> str:
        """Serving base of one deployment (append /generate, /v1, ...)."""
        return f"{self.url}/{self.tenant}/deployments/v2/llms/{deployment}"

    @property
    def connection(self) -> dict[str, Any]:
        """The matching Airflow connection, as a dict."""
        return connection_dict(self.url, self.token, self.tenant)

    def connection_json(self) -> str:
        """The value for AIRFLOW_CONN_PREDIBASE_DEFAULT."""
        return json.dumps(self.connection)

    # -- reaching inside ------------------------------------------------------------------------

    @property
    def app(self) -> EmulatorApp:
        if self._app is None:
            raise RuntimeError("emulator not started")
        return self._app

    @property
    def clock(self) -> Clock:
        return self.app.clock

    @property
    def admin(self) -> AdminClient:
        """The control API client (faults, force, reset, state)."""
        if self._admin is None:
            self._admin = AdminClient(self.url, self.token)
        return self._admin

    def reset(self) -> None:
        self.admin.reset()
