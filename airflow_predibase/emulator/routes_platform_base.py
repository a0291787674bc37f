"""What the platform's route handlers share: the dialect, the union, and dispatch by body.

See `dialect.py` for how a request's dialect is decided.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from airflow_predibase.emulator import dialect as d
from airflow_predibase.emulator import platform_wire as shape
from airflow_predibase.emulator.backend import Backend
from airflow_predibase.emulator.errors import ApiError
from airflow_predibase.emulator.routes_control import ControlRoutes
from airflow_predibase.emulator.wire import json_response, read_json

Endpoint = Callable[[Request], Awaitable[Response]]


def path_version(raw: str) -> int:
    """An adapter version tag from the path: a positive integer, or a 400."""
    if not (raw.isascii() and raw.isdigit()) or int(raw) < 1:
        raise ApiError(400, f"version must be a positive integer, got {raw!r}")
    return int(raw)


class PlatformBase:
    """The backend, the seed's routes (for seed-shaped requests under `default`) and the
    dialect this server speaks."""

    def __init__(self, backend: Backend, control: ControlRoutes) -> None:
        self.backend = backend
        self.control = control
        self.dialect = backend.config.dialect
        self.union = self.dialect == d.DEFAULT

    def _shaped(self, seed: dict[str, Any], platform: dict[str, Any]) -> Response:
        return json_response(shape.union(seed, platform) if self.union else platform)

    def _by_body(self, operation: str, seed: Endpoint, platform: Endpoint) -> Endpoint:
        """One endpoint for a shared path: the body's shape picks the handler."""

        async def endpoint(request: Request) -> Response:
            request_dialect = d.body_dialect(operation, await read_json(request))
            d.admit(self.dialect, request_dialect)
            return await (platform if request_dialect == d.PLATFORM else seed)(request)

        return endpoint

    def _reshaped(
        self, handler: Endpoint, one: Callable[[dict[str, Any], Request], dict[str, Any]]
    ) -> Endpoint:
        """`handler`'s answer with each seed object (or the one) in production's shape."""

        async def endpoint(request: Request) -> Response:
            response = await handler(request)
            if response.status_code != 200:
                return response
            body = json.loads(bytes(response.body))
            if isinstance(body.get("data"), list):
                body = {**body, "data": [one(item, request) for item in body["data"]]}
            else:
                body = one(body, request)
            return json_response(body)

        return endpoint
