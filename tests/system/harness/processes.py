"""Commands in process groups of their own (``setsid``), stopped by group; ports; paths.

Nothing here imports Airflow: every Airflow process is a child started with the venv's own
``airflow`` executable, so the test process keeps whatever Airflow configuration it had.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

from .waiting import StackError

#: Every process a stack starts carries ``MARKER_VAR=<run marker>`` in its environment.
MARKER_VAR = "PREDIBASE_SYSTEM_TEST_RUN"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def bin_path(name: str) -> str:
    """An executable of the running interpreter's environment (the venv), else PATH."""
    candidate = Path(sys.executable).with_name(name)
    if candidate.exists():
        return str(candidate)
    found = shutil.which(name)
    if found is None:
        raise StackError(f"{name} not found next to {sys.executable} nor on PATH")
    return found


def tail(path: Path, chars: int = 4000) -> str:
    try:
        return path.read_text(errors="replace")[-chars:]
    except OSError:
        return "(no log)"


def base_env() -> dict[str, str]:
    """The test's environment without any Airflow or Predibase settings of its own."""
    return {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("AIRFLOW", "PREDIBASE_", "PYTEST_"))
    }


class ManagedProcess:
    """One command in a process group of its own (``setsid``), its output in a file."""

    def __init__(
        self,
        name: str,
        argv: list[str],
        env: Mapping[str, str],
        log_path: Path,
        cwd: Path | None = None,
    ) -> None:
        self.name = name
        self.argv = argv
        self.env = dict(env)
        self.log_path = log_path
        self.cwd = cwd
        self.popen: subprocess.Popen[bytes] | None = None
        self.starts = 0
        #: Stopped or killed on purpose: not a crash.
        self.expected_down = False

    @property
    def pid(self) -> int | None:
        return None if self.popen is None else self.popen.pid

    @property
    def pgid(self) -> int | None:
        # start_new_session=True runs setsid() in the child: its pid is the group's id.
        return self.pid

    def start(self) -> None:
        if self.running:
            raise StackError(f"{self.name} is already running (pid {self.pid})")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self.starts += 1
        with self.log_path.open("ab") as log:
            log.write(f"\n==== start #{self.starts}: {' '.join(self.argv)}\n".encode())
            log.flush()
            self.popen = subprocess.Popen(
                self.argv,
                env=self.env,
                cwd=self.cwd,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.expected_down = False  # only now: `running` already sees the new process

    @property
    def running(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def signal_group(self, sig: int) -> None:
        """``kill -<sig> -- -<pgid>``."""
        if self.pgid is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.pgid, sig)

    def group_alive(self) -> bool:
        if self.pgid is None:
            return False
        try:
            os.killpg(self.pgid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20.0) -> None:
        """Signal the whole group, wait for it, and SIGKILL what is left after `timeout`."""
        if self.popen is None:
            return
        self.expected_down = True
        self.signal_group(sig)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.popen.poll()
            if self.popen.returncode is not None and not self.group_alive():
                break
            time.sleep(0.1)
        else:
            self.signal_group(signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(timeout=5)

    def kill(self) -> None:
        """A crash: SIGKILL to the whole group, no chance to clean up."""
        self.stop(signal.SIGKILL, timeout=10)
