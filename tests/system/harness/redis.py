"""A private Redis (the Celery broker): ``redis-server`` on 127.0.0.1, a free port, a temp dir.

Like `PostgresCluster`, it is started by the test and stopped at the end; nothing is written
to disk (no RDB snapshots, no AOF), and it never touches a system Redis.
"""

from __future__ import annotations

import os
import shutil
import socket
from pathlib import Path

from .processes import ManagedProcess, base_env, free_port, tail
from .waiting import StackError, wait_until


class RedisUnavailable(StackError):
    """No ``redis-server`` on this machine, or it did not start."""


def redis_server_path() -> str | None:
    """``$REDIS_SERVER``, else ``redis-server`` on PATH, else Debian's /usr/bin one."""
    if os.environ.get("REDIS_SERVER"):
        given = os.environ["REDIS_SERVER"]
        return given if Path(given).exists() else None
    found = shutil.which("redis-server")
    if found:
        return found
    return "/usr/bin/redis-server" if Path("/usr/bin/redis-server").exists() else None


class RedisServer(ManagedProcess):
    """``redis-server`` in a process group of its own, its output in ``workdir/redis.log``."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.port = free_port()
        binary = redis_server_path()
        if binary is None:
            raise RedisUnavailable(
                "redis-server not found (Debian: apt-get install redis-server; or set REDIS_SERVER)"
            )
        argv = [
            binary,
            "--bind",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--dir",
            str(workdir),
            "--save",
            "",
            "--appendonly",
            "no",
            "--protected-mode",
            "yes",
            "--daemonize",
            "no",
        ]
        super().__init__("redis", argv, base_env(), workdir / "redis.log", cwd=workdir)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def ping(self) -> bool:
        """``PING`` over a raw socket (the test process need not have a Redis client)."""
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(64).startswith(b"+PONG")
        except OSError:
            return False

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        super().start()

        def ready() -> bool:
            if not self.running:
                raise RedisUnavailable(f"redis-server exited:\n{tail(self.log_path)}")
            return self.ping()

        wait_until(ready, 30, "redis-server to answer PING", interval=0.1)
