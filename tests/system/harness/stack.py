"""A private Airflow: its home, its database, and its four components.

``airflow db migrate``, then ``api-server``, ``scheduler``, ``dag-processor`` and
``triggerer``, each started with ``setsid`` (a process group of its own) and stopped with
``kill -TERM -- -<pgid>``. REST calls come from `AirflowRestClient`; direct SQL for what REST
does not show from `MetadataDatabase`.
"""

from __future__ import annotations

import json
import re
import secrets
import signal
import subprocess
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .database import MetadataDatabase, sqlite_url
from .process_tree import (
    descendants,
    kill_if_same,
    kill_marked,
    pids_matching,
    proc_stat,
    processes_with_marker,
)
from .processes import MARKER_VAR, ManagedProcess, base_env, bin_path, free_port, tail
from .rest_api import AirflowRestClient
from .waiting import StackError

COMPONENTS = ("api-server", "scheduler", "dag-processor", "triggerer")


@dataclass
class StackSettings:
    """What differs between stacks. Defaults are the ones measured to work on 2 cores."""

    parallelism: int = 4
    #: Only runs a test triggers: no scheduled runs of the DAGs in the folder.
    use_job_schedule: bool = False
    #: A SIGKILLed triggerer's triggers move to a new one after this many seconds.
    triggerer_health_check_threshold: float = 10.0
    triggerer_heartbeat_sec: float = 2.0
    api_workers: int = 1
    extra_env: dict[str, str] = field(default_factory=dict)


def airflow_env(
    home: Path, dags_folder: Path, database_url: str, port: int, settings: StackSettings
) -> dict[str, str]:
    """The ``AIRFLOW__...`` settings every component of one stack shares."""
    from cryptography.fernet import Fernet

    return {
        "PYTHONUNBUFFERED": "1",
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags_folder),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__CORE__PARALLELISM": str(settings.parallelism),
        "AIRFLOW__CORE__FERNET_KEY": Fernet.generate_key().decode(),
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__API__WORKERS": str(settings.api_workers),
        "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(64),
        # Free ports, so that stacks (yours, a colleague's) never collide.
        "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
        "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": database_url,
        "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": str(settings.use_job_schedule),
        "AIRFLOW__TRIGGERER__JOB_HEARTBEAT_SEC": str(settings.triggerer_heartbeat_sec),
        "AIRFLOW__TRIGGERER__TRIGGERER_HEALTH_CHECK_THRESHOLD": str(
            settings.triggerer_health_check_threshold
        ),
    }


class AirflowStack(AirflowRestClient):
    """A private Airflow: its home, its database, its four components.

    :param workdir: everything goes under it (AIRFLOW_HOME is ``workdir/airflow``, the
        components' output ``workdir/components``).
    :param run_marker: value of MARKER_VAR in every process it starts (default: random).
    :param dags_folder: the DAGs to serve (``[core] dags_folder``).
    :param database_url: SQLAlchemy URL; default a SQLite file in the home.
    :param connections: conn_id -> Airflow connection (dict or JSON/URI string), passed as
        ``AIRFLOW_CONN_<ID>`` to every component.
    :param env: more environment for every component (e.g. your DAGs' settings).
    """

    def __init__(
        self,
        workdir: Path,
        dags_folder: Path,
        *,
        database_url: str | None = None,
        connections: Mapping[str, Mapping[str, Any] | str] | None = None,
        env: Mapping[str, str] | None = None,
        settings: StackSettings | None = None,
        run_marker: str | None = None,
    ) -> None:
        self.workdir = workdir
        self.home = workdir / "airflow"
        self.home.mkdir(parents=True, exist_ok=True)
        self.dags_folder = dags_folder
        self.settings = settings or StackSettings()
        self.database_url = database_url or sqlite_url(self.home / "airflow.db")
        self.port = free_port()
        super().__init__(f"http://127.0.0.1:{self.port}")
        self.run_marker = run_marker or uuid.uuid4().hex
        self.env = base_env()
        self.env[MARKER_VAR] = self.run_marker
        self.env.update(
            airflow_env(self.home, dags_folder, self.database_url, self.port, self.settings)
        )
        self.fernet_key = self.env["AIRFLOW__CORE__FERNET_KEY"]
        for conn_id, conn in (connections or {}).items():
            self.env[f"AIRFLOW_CONN_{conn_id.upper()}"] = (
                conn if isinstance(conn, str) else json.dumps(conn)
            )
        self.env.update(env or {})
        self.env.update(self.settings.extra_env)
        self.db = MetadataDatabase(self.database_url, self.fernet_key)
        airflow = bin_path("airflow")
        self.components = {
            name: ManagedProcess(
                name, [airflow, name], self.env, workdir / "components" / f"{name}.log"
            )
            for name in COMPONENTS
        }

    # -- lifecycle ---------------------------------------------------------------------------

    def migrate(self) -> None:
        log = self.workdir / "components" / "db-migrate.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("wb") as out:
            done = subprocess.run(
                [bin_path("airflow"), "db", "migrate"],
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                timeout=600,
                check=False,
                start_new_session=True,
            )
        if done.returncode != 0:
            raise StackError(f"airflow db migrate failed:\n{tail(log)}")

    def start(self, timeout: float = 180.0) -> None:
        """Migrate, start the four components, and wait until all report healthy."""
        self.migrate()
        for process in self.components.values():
            process.start()
        self.wait_healthy(timeout)

    def start_component(self, name: str) -> None:
        self.components[name].start()

    def stop_component(self, name: str, sig: int = signal.SIGTERM) -> None:
        self.components[name].stop(sig)

    def kill_component(self, name: str) -> None:
        """SIGKILL the component's process group and descendants: a crash, no cleanup."""
        process = self.components[name]
        family = descendants([process.pid]) if process.pid else {}
        process.kill()
        kill_if_same(family)

    def check_alive(self) -> None:
        """StackError with its log if a component died without being told to."""
        for process in self.components.values():
            if process.starts and not process.expected_down and not process.running:
                code = process.popen.returncode if process.popen else "?"
                raise StackError(f"{process.name} died (exit {code}):\n{tail(process.log_path)}")

    def owned_processes(self) -> dict[int, int]:
        """Every live process this stack started (pid -> start time): the components,
        their descendants (task runners live in process groups of their own), and what
        still carries the marker."""
        roots = [p.pid for p in self.components.values() if p.running and p.pid]
        owned = descendants(roots)
        for pid in roots:
            if (stat := proc_stat(pid)) is not None:
                owned[pid] = stat[1]
        for pid in processes_with_marker(self.run_marker):
            if (stat := proc_stat(pid)) is not None:
                owned.setdefault(pid, stat[1])
        return owned

    def stop(self) -> list[int]:
        """Stop every component group, then kill anything this stack started that is left.

        Returns the PIDs that had to be killed that way (task runners, stray workers).
        """
        owned = self.owned_processes()
        for name in ("scheduler", "triggerer", "dag-processor", "api-server"):
            self.components[name].stop()
        leftovers = kill_if_same(owned) + kill_marked(self.run_marker)
        self.close()
        self.db.close()
        return leftovers

    def task_runner_pids(self, ti_id: str) -> list[int]:
        """The process running this task instance try (Airflow titles it ``airflow worker --
        <ti id>``), only among the processes this stack started."""
        ours = self.owned_processes()
        return [p for p in pids_matching(rf"^airflow worker -- {re.escape(ti_id)}$") if p in ours]

    # -- logs ----------------------------------------------------------------------------------

    @property
    def log_folder(self) -> Path:
        return self.home / "logs"

    def task_log_files(
        self, dag_id: str, run_id: str, task_id: str, map_index: int = -1
    ) -> list[Path]:
        """Every log file of the task instance: attempts and their trigger logs."""
        folder = self.log_folder / f"dag_id={dag_id}" / f"run_id={run_id}" / f"task_id={task_id}"
        if map_index >= 0:
            folder /= f"map_index={map_index}"
        return sorted(folder.glob("attempt=*.log*")) if folder.exists() else []

    def task_log(
        self, dag_id: str, run_id: str, task_id: str, map_index: int = -1, *, try_number: int = 0
    ) -> str:
        """The task's log text (all tries, or one), trigger logs included."""
        files = self.task_log_files(dag_id, run_id, task_id, map_index)
        if try_number:
            files = [f for f in files if f.name.startswith(f"attempt={try_number}.log")]
        return "\n".join(f.read_text(errors="replace") for f in files)

    def component_log(self, name: str) -> str:
        return self.components[name].log_path.read_text(errors="replace")

    def all_log_files(self) -> list[Path]:
        """Task and trigger logs, and the components' own output."""
        files = [p for p in self.log_folder.rglob("*") if p.is_file()]
        files += [p.log_path for p in self.components.values() if p.log_path.exists()]
        return files

    # -- the database (see MetadataDatabase) ---------------------------------------------------

    def sql(self, query: str, **params: Any) -> list[dict[str, Any]]:
        """Rows of a read-only query on the metadata DB (a few retries if SQLite is locked)."""
        return self.db.sql(query, **params)

    def trigger_rows(self) -> list[dict[str, Any]]:
        """The trigger table, with kwargs decrypted (as the triggerer reads them)."""
        return self.db.trigger_rows()
