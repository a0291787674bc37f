"""An emulator app without a socket, driven through `httpx.ASGITransport`, on a manual clock.

Fast and deterministic for unit tests. Connection drops need a socket, so the `drop`
faults raise ConnectionResetError here; use `EmulatorServer` to test those.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

from airflow_predibase.emulator.app import EmulatorApp, create_app
from airflow_predibase.emulator.clock import ManualClock
from airflow_predibase.emulator.config import EmulatorConfig

#: A loopback name, so clients that refuse plain http elsewhere accept it.
BASE_URL = "http://localhost"


@dataclass
class InProcessEmulator:
    """An app, its manual clock, and what a client needs to reach it."""

    app: EmulatorApp
    clock: ManualClock
    base_url: str = BASE_URL

    @classmethod
    def create(cls, config: EmulatorConfig | None = None, **overrides: Any) -> InProcessEmulator:
        if config is None:
            config = EmulatorConfig(**overrides)
        elif overrides:
            config = EmulatorConfig.model_validate({**dict(config), **overrides})
        clock = ManualClock()
        return cls(app=create_app(config, clock=clock), clock=clock)

    @property
    def token(self) -> str:
        return self.app.config.token

    @property
    def tenant(self) -> str:
        return self.app.config.tenant

    @property
    def control_url(self) -> str:
        return f"{self.base_url}/v2"

    def deployment_url(self, deployment: str) -> str:
        return f"{self.base_url}/{self.tenant}/deployments/v2/llms/{deployment}"

    def transport(self) -> httpx.ASGITransport:
        """For `PredibaseClient(http_client=httpx.AsyncClient(transport=...))`."""
        return httpx.ASGITransport(app=self.app)

    def async_client(self, *, authenticated: bool = True) -> httpx.AsyncClient:
        """An httpx client on the app; use it as `async with emulator.async_client() as c`."""
        headers = {"Authorization": f"Bearer {self.token}"} if authenticated else {}
        return httpx.AsyncClient(
            transport=self.transport(), base_url=self.base_url, headers=headers
        )
