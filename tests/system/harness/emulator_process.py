"""``python -m airflow_predibase.emulator --port 0`` as a managed process.

The URL is read from the emulator's banner; the token reaches it through the environment
(``PREDIBASE_EMULATOR_TOKEN``), not the command line, so ``ps`` never shows it.
"""

from __future__ import annotations

import re
import secrets
import signal
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from airflow_predibase.emulator.admin_client import AdminClient

from .processes import ManagedProcess, base_env, tail
from .waiting import StackError, wait_until


def secret_token() -> str:
    """A token that cannot turn up in a log by accident, so finding it means a leak."""
    return f"pb_SYSTEMTEST_SECRET_{secrets.token_hex(12)}"


class EmulatorProcess(ManagedProcess):
    """A CLI-started emulator, with the connection JSON a stack needs to reach it."""

    def __init__(
        self,
        name: str,
        workdir: Path,
        token: str,
        *,
        profile: str = "fast",
        timing: Mapping[str, Any] | None = None,
        env: Mapping[str, str] | None = None,
        connection_extra: Mapping[str, Any] | None = None,
    ) -> None:
        self.token = token
        self.profile = profile
        self.timing = dict(timing) if timing else None
        self.state_file = workdir / f"emulator-{name}.db"
        self.connection_extra = dict(connection_extra or {})
        self.url: str | None = None
        self._admin: AdminClient | None = None
        argv = [
            sys.executable,
            "-m",
            "airflow_predibase.emulator",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--profile",
            profile,
            "--state-file",
            str(self.state_file),
        ]
        super().__init__(
            f"emulator-{name}",
            argv,
            {**(env or base_env()), "PREDIBASE_EMULATOR_TOKEN": token},
            workdir / "components" / f"emulator-{name}.log",
        )

    def start(self) -> None:
        super().start()
        self.url = None

    def wait_ready(self, timeout: float = 30.0) -> str:
        def banner_url() -> str | None:
            if not self.running:
                raise StackError(f"{self.name} exited:\n{tail(self.log_path)}")
            found = re.findall(r"listening on (http://\S+)", tail(self.log_path, 20000))
            return found[-1] if found and self.starts == len(found) else None

        self.url = wait_until(banner_url, timeout, f"{self.name} to listen")
        if self.timing:
            self.admin.set_profile(self.timing)
        return self.url

    @property
    def admin(self) -> AdminClient:
        if self.url is None:
            raise StackError(f"{self.name} is not running")
        if self._admin is None:
            self._admin = AdminClient(self.url, self.token)
        return self._admin

    def stop(self, sig: int = signal.SIGINT, timeout: float = 10.0) -> None:
        if self._admin is not None:
            self._admin.close()
            self._admin = None
        super().stop(sig, timeout)

    def connection(self) -> dict[str, Any]:
        """The Airflow connection (as a dict) that points the provider at this emulator."""
        from airflow_predibase.emulator.server import connection_dict

        if self.url is None:
            raise StackError(f"{self.name} is not running")
        conn: dict[str, Any] = connection_dict(self.url, self.token, "emulator")
        conn.setdefault("extra", {}).update(self.connection_extra)
        return conn

    def client(self) -> Any:
        """A blocking provider client on this emulator (to prepare data from the test)."""
        from airflow_predibase.client import ClientSettings, PredibaseClient

        if self.url is None:
            raise StackError(f"{self.name} is not running")
        return PredibaseClient(
            ClientSettings(
                token=self.token,
                base_url=f"{self.url}/v2",
                serving_url=self.url,
                tenant_id="emulator",
            )
        )
