"""`create_app(config)`: one emulator as an ASGI application.

Layers, outermost first: faults (they must see uvicorn's own `send` to drop a connection),
the bearer-token check, the tenant's rate limit, then Starlette's router: the serving
plane, the control plane under `/v2`, the control API, the upload and download URLs, and
the demo console under `/console`.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount
from starlette.types import Receive, Scope, Send

from airflow_predibase.emulator.auth import AuthMiddleware
from airflow_predibase.emulator.backend import Backend
from airflow_predibase.emulator.clock import Clock, SystemClock
from airflow_predibase.emulator.config import EmulatorConfig
from airflow_predibase.emulator.dialect import PLATFORM, SPEC
from airflow_predibase.emulator.errors import ApiError, error_body, is_serving_path
from airflow_predibase.emulator.faults import FaultMiddleware
from airflow_predibase.emulator.rate_limit import RateLimitMiddleware
from airflow_predibase.emulator.routes_adapter_versions import seed_version_routes
from airflow_predibase.emulator.routes_admin import AdminRoutes
from airflow_predibase.emulator.routes_console import ConsoleRoutes
from airflow_predibase.emulator.routes_control import ControlRoutes
from airflow_predibase.emulator.routes_files import FileRoutes
from airflow_predibase.emulator.routes_platform import PlatformRoutes
from airflow_predibase.emulator.routes_serving import ServingRoutes
from airflow_predibase.emulator.store import Store, open_store

log = logging.getLogger(__name__)


def _error(
    request: Request,
    status: int,
    message: str,
    *,
    error_type: str | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    serving = is_serving_path(request.url.path)
    body = error_body(status, message, serving=serving, error_type=error_type)
    return Response(body, status_code=status, media_type="application/json", headers=headers)


async def _api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return _error(request, exc.status, exc.message, error_type=exc.error_type, headers=exc.headers)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    message = {404: f"no route {request.url.path}", 405: "method not allowed"}.get(
        exc.status_code, str(exc.detail)
    )
    return _error(request, exc.status_code, message, headers=dict(exc.headers or {}))


async def _bug(request: Request, exc: Exception) -> Response:
    log.exception("emulator bug on %s %s", request.method, request.url.path)
    return _error(request, 500, f"emulator internal error: {type(exc).__name__}: {exc}")


class EmulatorApp:
    """The ASGI callable, with the backend within reach of tests and the server."""

    def __init__(self, backend: Backend, router: Starlette) -> None:
        self.backend = backend
        self.router = router
        limited = RateLimitMiddleware(router, backend.rate_limit)
        self._asgi = FaultMiddleware(
            AuthMiddleware(limited, backend.config.token), backend.faults, backend.holds
        )

    @property
    def config(self) -> EmulatorConfig:
        return self.backend.config

    @property
    def clock(self) -> Clock:
        return self.backend.clock

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._asgi(scope, receive, send)


def create_app(
    config: EmulatorConfig | None = None,
    *,
    clock: Clock | None = None,
    store: Store | None = None,
) -> EmulatorApp:
    """A new emulator with its own state: `store` if given, else per `config.state_file`."""
    config = config or EmulatorConfig()
    owned = store is None
    backend = Backend(config, store or open_store(config.state_file), clock or SystemClock())

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        if owned:
            backend.store.close()

    control = ControlRoutes(backend)
    platform = PlatformRoutes(backend, control)
    # The platform's routes come before the seed's: they decide shared paths (dialect.py).
    control_routes = [*platform.body_routes(), *platform.platform_routes()]
    control_routes[:0] = seed_version_routes(backend, config.dialect)  # before the 4xx
    if config.dialect != SPEC:
        control_routes += platform.read_routes()
    if config.dialect == PLATFORM:
        control_routes += platform.seed_path_routes()
    routes = [
        # Serving paths come first: a tenant called "v2" must not fall into the /v2 mount.
        *ServingRoutes(backend).routes(),
        Mount("/v2", routes=[*control_routes, *control.routes(), *platform.batch_routes()]),
        *platform.root_routes(),
        *AdminRoutes(backend).routes(),
        *FileRoutes(backend).routes(),
        *ConsoleRoutes(backend).routes(),
    ]
    router = Starlette(
        routes=routes,
        exception_handlers={ApiError: _api_error, HTTPException: _http_error, Exception: _bug},
        lifespan=lifespan,
    )
    return EmulatorApp(backend, router)
