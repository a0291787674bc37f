"""The metadata database: a private PostgreSQL cluster or a SQLite file, and reading it.

* `PostgresCluster`: a throwaway cluster under a temp dir (``initdb -A trust``; run as the
  ``postgres`` user when the test runs as root), listening on 127.0.0.1 only.
* `MetadataDatabase`: read-only SQL on whichever database a stack uses, for what REST does
  not show (the ``trigger`` table, with its kwargs decrypted).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

from .processes import base_env, free_port
from .waiting import StackError


class PostgresUnavailable(StackError):
    """A private PostgreSQL cluster could not be started on this machine."""


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"


def postgres_bin_dir() -> Path | None:
    """Where initdb and pg_ctl are: $PG_BIN, the newest /usr/lib/postgresql/*/bin, or PATH."""
    if os.environ.get("PG_BIN"):
        return Path(os.environ["PG_BIN"])
    candidates = sorted(
        Path("/usr/lib/postgresql").glob("*/bin"),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
    )
    for candidate in reversed(candidates):
        if (candidate / "initdb").exists():
            return candidate
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


class PostgresCluster:
    """A throwaway PostgreSQL cluster in a temp dir, on 127.0.0.1 and a free port.

    Durability is switched off (fsync, synchronous_commit, full_page_writes): it is a test
    database. As root, initdb and the server run as the ``postgres`` user (PostgreSQL
    refuses to run as root).
    """

    def __init__(self, workdir: Path, *, database: str = "airflow", user: str = "postgres"):
        self.workdir = workdir
        self.database = database
        self.db_user = user
        self.port = free_port()
        self.bin = postgres_bin_dir()
        self.datadir = workdir / "pgdata"
        self.logfile = workdir / "postgres.log"
        self.started = False
        self._run_as: dict[str, Any] = {}
        if os.geteuid() == 0:
            self._run_as = {"user": "postgres", "group": "postgres", "extra_groups": []}

    @property
    def url(self) -> str:
        return f"postgresql+psycopg2://{self.db_user}@127.0.0.1:{self.port}/{self.database}"

    def _run(self, argv: list[str], timeout: float = 120) -> None:
        done = subprocess.run(
            argv,
            capture_output=True,
            text=True,
            timeout=timeout,
            env={**base_env(), "LC_ALL": "C.UTF-8", "LANG": "C.UTF-8"},
            check=False,
            cwd="/",
            **self._run_as,
        )
        if done.returncode != 0:
            raise StackError(
                f"{' '.join(argv)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}"
            )

    def start(self) -> None:
        if self.bin is None:
            raise StackError("PostgreSQL binaries (initdb, pg_ctl) not found; set PG_BIN")
        self.workdir.mkdir(parents=True, exist_ok=True)
        if self._run_as:
            shutil.chown(self.workdir, "postgres", "postgres")
            # The server user must be able to reach its directory through the temp dir.
            parent = self.workdir.parent
            parent.chmod(parent.stat().st_mode | 0o011)
        self._run(
            [
                str(self.bin / "initdb"),
                "-D",
                str(self.datadir),
                "-A",
                "trust",
                "-U",
                self.db_user,
                "-E",
                "UTF8",
                "--no-sync",
            ]
        )
        options = " ".join(
            [
                f"-p {self.port}",
                "-c listen_addresses=127.0.0.1",
                f"-c unix_socket_directories={self.workdir}",
                "-c fsync=off",
                "-c synchronous_commit=off",
                "-c full_page_writes=off",
                "-c max_connections=300",
            ]
        )
        self._run(
            [
                str(self.bin / "pg_ctl"),
                "-D",
                str(self.datadir),
                "-o",
                options,
                "-l",
                str(self.logfile),
                "-w",
                "-t",
                "60",
                "start",
            ]
        )
        self.started = True
        self._run(
            [
                str(self.bin / "psql"),
                "-h",
                "127.0.0.1",
                "-p",
                str(self.port),
                "-U",
                self.db_user,
                "-d",
                "postgres",
                "-v",
                "ON_ERROR_STOP=1",
                "-c",
                f'CREATE DATABASE "{self.database}"',
            ]
        )

    def stop(self) -> None:
        if not self.started or self.bin is None:
            return
        try:
            self._run(
                [str(self.bin / "pg_ctl"), "-D", str(self.datadir), "-m", "fast", "-w", "stop"],
                timeout=60,
            )
        except (StackError, subprocess.TimeoutExpired):
            pidfile = self.datadir / "postmaster.pid"
            with contextlib.suppress(OSError, ValueError, ProcessLookupError):
                os.kill(int(pidfile.read_text().split()[0]), signal.SIGKILL)
        self.started = False


class MetadataDatabase:
    """Read-only access to a stack's metadata database (SQLAlchemy, created on first use).

    :param fernet_key: the stack's ``[core] fernet_key``, to decrypt trigger kwargs.
    """

    def __init__(self, url: str, fernet_key: str) -> None:
        self.url = url
        self.fernet_key = fernet_key
        self._engine: Any = None

    def sql(self, query: str, **params: Any) -> list[dict[str, Any]]:
        """Rows of a read-only query (a few retries if SQLite is locked)."""
        import sqlalchemy

        if self._engine is None:
            self._engine = sqlalchemy.create_engine(self.url)
        for attempt in range(10):
            try:
                with self._engine.connect() as conn:
                    result = conn.execute(sqlalchemy.text(query), params)
                    return [dict(row._mapping) for row in result]
            except sqlalchemy.exc.OperationalError:
                if attempt == 9:
                    raise
                time.sleep(0.3)
        raise AssertionError("unreachable")

    def triggerer_job_ids(self) -> list[int]:
        rows = self.sql("SELECT id FROM job WHERE job_type = 'TriggererJob' ORDER BY id")
        return [int(r["id"]) for r in rows]

    def trigger_rows(self) -> list[dict[str, Any]]:
        """The trigger table, with kwargs decrypted (as the triggerer reads them)."""
        from cryptography.fernet import Fernet

        rows = self.sql("SELECT * FROM trigger")
        fernet = Fernet(self.fernet_key.encode())
        for row in rows:
            raw = row["kwargs"]
            row["kwargs_raw"] = raw
            row["kwargs"] = raw if raw.startswith("{") else fernet.decrypt(raw.encode()).decode()
        return rows

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None
