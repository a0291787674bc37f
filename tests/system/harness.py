"""Real Airflow, started from a test: emulators, a private AIRFLOW_HOME, the four components.

Reusable outside this repository (see docs/system_tests.md). Nothing here imports Airflow:
every Airflow process is a child started with the venv's own ``airflow`` executable, so the
test process keeps whatever Airflow configuration it had.

* `EmulatorProcess`: ``python -m airflow_predibase.emulator --port 0`` in its own process
  group, with the URL read from its banner and an `AdminClient` on its control API.
* `PostgresCluster`: a private PostgreSQL cluster under a temp dir (``initdb -A trust``;
  run as the ``postgres`` user when the test runs as root), listening on 127.0.0.1 only.
* `AirflowStack`: ``airflow db migrate``, then ``api-server``, ``scheduler``,
  ``dag-processor`` and ``triggerer``, each started with ``setsid`` (a process group of its
  own) and stopped with ``kill -TERM -- -<pgid>``; REST helpers for what a user does in the
  UI (trigger, mark, clear, links, rendered fields); direct SQL for what REST does not show
  (the ``trigger`` table).
* `StateRecorder`: samples task-instance states over REST, so a test can show that a task
  really passed through ``deferred``; `TriggerTableRecorder` keeps every ``trigger`` row.
* `running_stack`: all of it as one context manager.

Cleanup. Task runners put themselves in process groups of their own, so a group kill of the
scheduler does not reach them. `stop()` therefore first lists every descendant of the
components, ends the component groups, then kills whatever of that list still runs (same
PID and start time). Processes also carry ``PREDIBASE_SYSTEM_TEST_RUN=<stack id>`` in their
environment, a second net for those that were orphaned (not for retitled ones: setproctitle
overwrites the environment block). Nothing else on the machine is touched.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from airflow_predibase.emulator.admin_client import AdminClient

COMPONENTS = ("api-server", "scheduler", "dag-processor", "triggerer")
MARKER_VAR = "PREDIBASE_SYSTEM_TEST_RUN"
TERMINAL_RUN_STATES = frozenset({"success", "failed"})
TERMINAL_TI_STATES = frozenset({"success", "failed", "skipped", "upstream_failed", "removed"})


class StackError(RuntimeError):
    """Something the harness started did not come up, with the tail of its log."""


#: Set to make every `wait_until` give up at once (Ctrl-C, or a test that must stop).
ABORT = threading.Event()


def secret_token() -> str:
    """A token that cannot turn up in a log by accident, so finding it means a leak."""
    return f"pb_SYSTEMTEST_SECRET_{secrets.token_hex(12)}"


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


def wait_until(
    predicate: Callable[[], Any],
    timeout: float,
    what: str,
    interval: float = 0.25,
    *,
    alive: Callable[[], None] | None = None,
) -> Any:
    """Poll `predicate` until it returns something truthy; TimeoutError naming `what`.

    `alive` (e.g. `AirflowStack.check_alive`) is called first on every round, so that a
    crashed component fails the wait at once instead of at its timeout.
    """
    deadline = time.monotonic() + timeout
    last_error: BaseException | None = None
    while True:
        if ABORT.is_set():
            raise StackError(f"aborted while waiting for {what}")
        if alive is not None:
            alive()
        try:
            value = predicate()
        except (httpx.HTTPError, OSError) as error:  # a component restarting, a locked DB
            value, last_error = None, error
        if value:
            return value
        if time.monotonic() >= deadline:
            detail = f" (last error: {last_error})" if last_error else ""
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}{detail}")
        time.sleep(interval)


# -- processes ------------------------------------------------------------------------------


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


def _stat(pid: int) -> tuple[int, int] | None:
    """(parent pid, start time in clock ticks) of a live process, from /proc/<pid>/stat."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = raw[raw.rindex(")") + 2 :].split()  # the command name may hold spaces
    return int(fields[1]), int(fields[19])


def process_table() -> dict[int, tuple[int, int]]:
    """pid -> (parent pid, start time) of every live process."""
    table = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (stat := _stat(int(entry.name))) is not None:
            table[int(entry.name)] = stat
    return table


def descendants(roots: Iterable[int]) -> dict[int, int]:
    """Every live descendant of `roots`, with its start time (pid -> start time)."""
    table = process_table()
    children: dict[int, list[int]] = {}
    for pid, (ppid, _) in table.items():
        children.setdefault(ppid, []).append(pid)
    found: dict[int, int] = {}
    todo = list(roots)
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found[child] = table[child][1]
                todo.append(child)
    return found


def processes_with_marker(value: str) -> list[int]:
    """PIDs whose environment has MARKER_VAR=value.

    Only for processes that kept their environment block: setproctitle (Airflow's task
    runners and executor workers) overwrites it, so those are found by ancestry instead.
    """
    needle = f"{MARKER_VAR}={value}".encode()
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        if needle in environ.split(b"\0"):
            pids.append(int(entry.name))
    return pids


def kill_marked(value: str) -> list[int]:
    """SIGKILL every process carrying this stack's marker; returns their PIDs."""
    killed = processes_with_marker(value)
    for pid in killed:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
    return killed


def kill_if_same(processes: Mapping[int, int]) -> list[int]:
    """SIGKILL each pid that still runs the same process (same start time)."""
    killed = []
    for pid, started in processes.items():
        stat = _stat(pid)
        if stat is not None and stat[1] == started:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
    return killed


def pids_matching(pattern: str) -> list[int]:
    """PIDs whose command line (as `ps` shows it, proctitle included) matches `pattern`."""
    out = subprocess.run(
        ["ps", "-eo", "pid=,args="], capture_output=True, text=True, check=True
    ).stdout
    regex = re.compile(pattern)
    pids = []
    for line in out.splitlines():
        pid, _, args = line.strip().partition(" ")
        if regex.search(args) and int(pid) != os.getpid():
            pids.append(int(pid))
    return pids


# -- the emulator ---------------------------------------------------------------------------


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
            "--token",
            token,
            "--state-file",
            str(self.state_file),
        ]
        super().__init__(
            f"emulator-{name}",
            argv,
            env or base_env(),
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


# -- PostgreSQL -----------------------------------------------------------------------------


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
        if not self.started:
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


# -- Airflow --------------------------------------------------------------------------------


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


class AirflowStack:
    """A private Airflow: its home, its database, its four components and its emulators.

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
        from cryptography.fernet import Fernet

        self.workdir = workdir
        self.home = workdir / "airflow"
        self.home.mkdir(parents=True, exist_ok=True)
        self.dags_folder = dags_folder
        self.settings = settings or StackSettings()
        self.database_url = database_url or f"sqlite:///{self.home / 'airflow.db'}"
        self.port = free_port()
        self.run_marker = run_marker or uuid.uuid4().hex
        self.fernet_key = Fernet.generate_key().decode()
        self.env = base_env()
        self.env.update(
            {
                MARKER_VAR: self.run_marker,
                "PYTHONUNBUFFERED": "1",
                "AIRFLOW_HOME": str(self.home),
                "AIRFLOW__CORE__DAGS_FOLDER": str(dags_folder),
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
                "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
                "AIRFLOW__CORE__PARALLELISM": str(self.settings.parallelism),
                "AIRFLOW__CORE__FERNET_KEY": self.fernet_key,
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
                "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.api_url}/execution/",
                "AIRFLOW__API__HOST": "127.0.0.1",
                "AIRFLOW__API__PORT": str(self.port),
                "AIRFLOW__API__WORKERS": str(self.settings.api_workers),
                "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(64),
                # Free ports, so that stacks (yours, a colleague's) never collide.
                "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
                "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": self.database_url,
                "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": str(self.settings.use_job_schedule),
                "AIRFLOW__TRIGGERER__JOB_HEARTBEAT_SEC": str(self.settings.triggerer_heartbeat_sec),
                "AIRFLOW__TRIGGERER__TRIGGERER_HEALTH_CHECK_THRESHOLD": str(
                    self.settings.triggerer_health_check_threshold
                ),
            }
        )
        for conn_id, conn in (connections or {}).items():
            self.env[f"AIRFLOW_CONN_{conn_id.upper()}"] = (
                conn if isinstance(conn, str) else json.dumps(conn)
            )
        self.env.update(env or {})
        self.env.update(self.settings.extra_env)
        airflow = bin_path("airflow")
        self.components = {
            name: ManagedProcess(
                name, [airflow, name], self.env, workdir / "components" / f"{name}.log"
            )
            for name in COMPONENTS
        }
        self._api: httpx.Client | None = None
        self._engine: Any = None
        self._write_lock = threading.Lock()

    # -- lifecycle ---------------------------------------------------------------------------

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

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

    def health(self) -> dict[str, Any]:
        response = self.api.get("/api/v2/monitor/health")
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result

    def wait_healthy(self, timeout: float = 180.0, components: Iterable[str] = ()) -> None:
        wanted = tuple(components) or ("metadatabase", "scheduler", "triggerer", "dag_processor")

        def healthy() -> bool:
            self.check_alive()
            report = self.health()
            return all(report.get(c, {}).get("status") == "healthy" for c in wanted)

        wait_until(healthy, timeout, f"{', '.join(wanted)} to be healthy", interval=0.5)

    def owned_processes(self) -> dict[int, int]:
        """Every live process this stack started (pid -> start time): the components,
        their descendants (task runners live in process groups of their own), and what
        still carries the marker."""
        roots = [p.pid for p in self.components.values() if p.running and p.pid]
        owned = descendants(roots)
        for pid in roots:
            if (stat := _stat(pid)) is not None:
                owned[pid] = stat[1]
        for pid in processes_with_marker(self.run_marker):
            if (stat := _stat(pid)) is not None:
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
        if self._api is not None:
            self._api.close()
            self._api = None
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None
        return leftovers

    # -- REST --------------------------------------------------------------------------------

    @property
    def api(self) -> httpx.Client:
        if self._api is None:
            self._api = httpx.Client(base_url=self.api_url, timeout=30)
        return self._api

    def rest(self, method: str, path: str, **kwargs: Any) -> Any:
        """A public REST call (``/api/v2`` + path); raises with the server's answer.

        Calls that change something go one at a time. On SQLite, the API server records
        each in the audit log with a blocking commit on its event loop; several at once
        stall it on its own database lock until SQLite's busy timeout (5 s) gives up, and
        the scheduler, waiting for the same lock, can die of "database is locked".
        """
        if method == "GET":
            return self._rest(method, path, **kwargs)
        with self._write_lock:
            return self._rest(method, path, **kwargs)

    def _rest(self, method: str, path: str, **kwargs: Any) -> Any:
        for attempt in range(5):
            try:
                response = self.api.request(method, f"/api/v2{path}", **kwargs)
            except httpx.TransportError:
                if attempt == 4:
                    raise
                time.sleep(1)
                continue
            if response.status_code >= 500 and attempt < 4:  # e.g. SQLite "database is locked"
                time.sleep(0.5)
                continue
            if response.is_error:
                raise StackError(f"{method} {path}: {response.status_code} {response.text}")
            return response.json() if response.content else None
        raise AssertionError("unreachable")

    def wait_for_dags(self, dag_ids: Iterable[str], timeout: float = 120.0) -> None:
        """Until the dag-processor has serialized every DAG (and reported no import error)."""
        pending = set(dag_ids)

        def parsed() -> bool:
            errors = self.rest("GET", "/importErrors")["import_errors"]
            if errors:
                raise StackError(f"DAG import errors: {json.dumps(errors, indent=1)}")
            for dag_id in list(pending):
                response = self.api.get(f"/api/v2/dags/{dag_id}/details")
                if response.status_code == 200:
                    pending.discard(dag_id)
            return not pending

        wait_until(parsed, timeout, f"DAGs {sorted(pending)} to be parsed", interval=0.5)

    def trigger(
        self, dag_id: str, run_id: str | None = None, conf: Mapping[str, Any] | None = None
    ) -> str:
        run_id = run_id or f"system__{dag_id}__{uuid.uuid4().hex[:8]}"
        body = {"dag_run_id": run_id, "logical_date": None, "conf": dict(conf or {})}
        try:
            self.rest("POST", f"/dags/{dag_id}/dagRuns", json=body)
        except StackError:
            # A retried POST (after a 5xx) may find the run its first attempt created.
            if self.api.get(f"/api/v2/dags/{dag_id}/dagRuns/{run_id}").status_code != 200:
                raise
        return run_id

    def dag_run(self, dag_id: str, run_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self.rest("GET", f"/dags/{dag_id}/dagRuns/{run_id}")
        return result

    def wait_for_run(self, dag_id: str, run_id: str, timeout: float = 240.0) -> str:
        """The run's final state (success or failed)."""

        def finished() -> str | None:
            self.check_alive()
            state = self.dag_run(dag_id, run_id)["state"]
            return state if state in TERMINAL_RUN_STATES else None

        result: str = wait_until(finished, timeout, f"run {dag_id}/{run_id} to finish", 1.0)
        return result

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        data = self.rest(
            "GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances", params={"limit": 1000}
        )
        result: list[dict[str, Any]] = data["task_instances"]
        return result

    def task_instances_of_runs(self, run_ids: Iterable[str]) -> list[dict[str, Any]]:
        """Task instances of many runs in one request."""
        body = {"dag_run_ids": sorted(run_ids), "page_limit": 1000}
        data = self.rest("POST", "/dags/~/dagRuns/~/taskInstances/list", json=body)
        result: list[dict[str, Any]] = data["task_instances"]
        return result

    def task_instance(
        self, dag_id: str, run_id: str, task_id: str, map_index: int = -1
    ) -> dict[str, Any]:
        path = f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}"
        if map_index >= 0:
            path += f"/{map_index}"
        result: dict[str, Any] = self.rest("GET", path)
        return result

    def tries(
        self, dag_id: str, run_id: str, task_id: str, map_index: int = -1
    ) -> list[dict[str, Any]]:
        path = f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}"
        path += f"/{map_index}/tries" if map_index >= 0 else "/tries"
        result: list[dict[str, Any]] = self.rest("GET", path)["task_instances"]
        return result

    def wait_for_task_state(
        self,
        dag_id: str,
        run_id: str,
        task_id: str,
        states: Iterable[str],
        timeout: float = 120.0,
        map_index: int = -1,
    ) -> dict[str, Any]:
        wanted = set(states)

        def reached() -> dict[str, Any] | None:
            self.check_alive()
            ti = self.task_instance(dag_id, run_id, task_id, map_index)
            return ti if ti["state"] in wanted else None

        result: dict[str, Any] = wait_until(
            reached, timeout, f"{dag_id}/{run_id}/{task_id} to be {sorted(wanted)}", 0.5
        )
        return result

    def set_task_state(self, dag_id: str, run_id: str, task_id: str, state: str) -> Any:
        """What "Mark failed/success" in the UI does."""
        return self.rest(
            "PATCH",
            f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}",
            json={"new_state": state},
        )

    def clear_tasks(self, dag_id: str, run_id: str, task_ids: list[str]) -> Any:
        """What "Clear" in the UI does (the run is set running again)."""
        return self.rest(
            "POST",
            f"/dags/{dag_id}/clearTaskInstances",
            json={
                "dry_run": False,
                "dag_run_id": run_id,
                "task_ids": task_ids,
                "only_failed": False,
                "reset_dag_runs": True,
            },
        )

    def links(self, dag_id: str, run_id: str, task_id: str, map_index: int = -1) -> dict[str, Any]:
        params = {"map_index": map_index} if map_index >= 0 else None
        result: dict[str, Any] = self.rest(
            "GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/links", params=params
        )
        return result

    def xcom(
        self,
        dag_id: str,
        run_id: str,
        task_id: str,
        key: str = "return_value",
        map_index: int = -1,
    ) -> Any:
        """An XCom value as the REST API shows it (deserialized)."""
        entry = self.rest(
            "GET",
            f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/xcomEntries/{key}",
            params={"map_index": map_index, "deserialize": True, "stringify": False},
        )
        return entry["value"]

    def event_logs(self, **filters: Any) -> list[dict[str, Any]]:
        """Audit log entries (``/eventLogs``), e.g. ``event="state mismatch"``."""
        result: list[dict[str, Any]] = self.rest(
            "GET", "/eventLogs", params={"limit": 1000, **filters}
        )["event_logs"]
        return result

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

    # -- the database --------------------------------------------------------------------------

    def sql(self, query: str, **params: Any) -> list[dict[str, Any]]:
        """Rows of a read-only query on the metadata DB (a few retries if SQLite is locked)."""
        import sqlalchemy

        if self._engine is None:
            self._engine = sqlalchemy.create_engine(self.database_url)
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

    # -- processes of tasks ---------------------------------------------------------------------

    def task_runner_pids(self, ti_id: str) -> list[int]:
        """The process running this task instance try (Airflow titles it ``airflow worker --
        <ti id>``), only among the processes this stack started."""
        ours = self.owned_processes()
        return [p for p in pids_matching(rf"^airflow worker -- {re.escape(ti_id)}$") if p in ours]


class StateRecorder:
    """Samples the states of the task instances of some DAG runs over REST.

    `seen[(dag_id, run_id, task_id, map_index)]` is the list of distinct states in the order
    they were observed; `max_in_state(...)` gives the most task instances of a run seen in
    one state at once. Deferred waits here last several seconds, far longer than the
    sampling interval, so a deferral is not missed.
    """

    def __init__(self, stack: AirflowStack, interval: float = 0.5) -> None:
        self.stack = stack
        self.interval = interval
        self.runs: set[tuple[str, str]] = set()
        self.seen: dict[tuple[str, str, str, int], list[str]] = {}
        self.peaks: dict[tuple[str, str, str], int] = {}
        #: Trigger rows as the REST API shows them on deferred task instances, by id.
        self.triggers: dict[int, dict[str, Any]] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="state-recorder", daemon=True)

    def watch(self, dag_id: str, run_id: str) -> None:
        with self._lock:
            self.runs.add((dag_id, run_id))

    def __enter__(self) -> StateRecorder:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def sample(self) -> None:
        with self._lock:
            runs = set(self.runs)
        if not runs:
            return
        try:
            tis = self.stack.task_instances_of_runs({run_id for _, run_id in runs})
        except (httpx.HTTPError, StackError):
            return
        counts: dict[tuple[str, str, str], int] = {}
        with self._lock:
            for ti in tis:
                if (ti["dag_id"], ti["dag_run_id"]) not in runs:
                    continue
                state = ti["state"] or "none"
                key = (ti["dag_id"], ti["dag_run_id"], ti["task_id"], ti["map_index"])
                states = self.seen.setdefault(key, [])
                if not states or states[-1] != state:
                    states.append(state)
                count_key = (ti["dag_id"], ti["dag_run_id"], state)
                counts[count_key] = counts.get(count_key, 0) + 1
                if ti.get("trigger"):
                    self.triggers[int(ti["trigger"]["id"])] = ti["trigger"]
            for count_key, count in counts.items():
                self.peaks[count_key] = max(self.peaks.get(count_key, 0), count)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()

    def states(self, dag_id: str, run_id: str, task_id: str, map_index: int = -1) -> list[str]:
        with self._lock:
            return list(self.seen.get((dag_id, run_id, task_id, map_index), []))

    def max_in_state(self, dag_id: str, run_id: str, state: str) -> int:
        with self._lock:
            return self.peaks.get((dag_id, run_id, state), 0)


class TriggerTableRecorder:
    """Keeps every row the ``trigger`` table held while it ran (rows vanish once a trigger
    fires, so a check at the end would see an empty table)."""

    def __init__(self, stack: AirflowStack, interval: float = 1.0) -> None:
        self.stack = stack
        self.interval = interval
        self.rows: dict[int, dict[str, Any]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="trigger-recorder", daemon=True)

    def __enter__(self) -> TriggerTableRecorder:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        self.sample()

    def sample(self) -> None:
        import sqlalchemy

        try:
            rows = self.stack.trigger_rows()
        except sqlalchemy.exc.SQLAlchemyError:
            return
        for row in rows:
            self.rows[int(row["id"])] = row

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()


# -- secrets ---------------------------------------------------------------------------------


def find_secret(secret: str, texts: Mapping[str, str]) -> list[str]:
    """Where `secret` occurs: "<source>:<line>" for every hit."""
    hits = []
    for source, text in texts.items():
        for number, line in enumerate(text.splitlines(), 1):
            if secret in line:
                hits.append(f"{source}:{number}")
    return hits


def read_files(paths: Iterable[Path]) -> dict[str, str]:
    return {str(p): p.read_text(errors="replace") for p in paths}


# -- putting it together -------------------------------------------------------------------


class PostgresUnavailable(StackError):
    """A private PostgreSQL cluster could not be started on this machine."""


def stage_dags(folder: Path, sources: Iterable[Path]) -> Path:
    """A DAGs folder of symlinks to `sources` (files or directories), so that only the DAGs
    you name are parsed, and each file still runs unchanged (its data beside it)."""
    folder.mkdir(parents=True, exist_ok=True)
    for source in sources:
        source = source.resolve()
        if not source.exists():
            raise StackError(f"DAG source {source} does not exist")
        link = folder / source.name
        if link.exists() or link.is_symlink():
            raise StackError(f"two DAG sources are called {source.name}")
        link.symlink_to(source, target_is_directory=source.is_dir())
    return folder


@contextlib.contextmanager
def running_stack(
    dags: Path | Iterable[Path],
    *,
    emulators: Mapping[str, Mapping[str, Any]] | None = None,
    database: str = "sqlite",
    env: Mapping[str, str] | None = None,
    settings: StackSettings | None = None,
    token: str | None = None,
    keep_workdir: bool = False,
) -> Iterator[tuple[AirflowStack, dict[str, EmulatorProcess]]]:
    """Emulators (one per connection ID), a database, and Airflow; everything stopped and
    removed on exit, whatever happened.

    :param dags: a DAGs folder, or files and directories to serve (symlinked into one).
    :param emulators: conn_id -> keyword arguments of `EmulatorProcess` (``profile``,
        ``timing``, ``connection_extra``). Default: one emulator as ``predibase_default``.
    :param database: ``sqlite`` or ``postgres`` (a private cluster; `PostgresUnavailable`
        if it cannot be started).
    :param env: more environment for the components; ``{workdir}`` in a value becomes
        the stack's temp dir.
    :param token: the emulators' API token (default: a fresh `secret_token()`).
    """
    workdir = Path(tempfile.mkdtemp(prefix="predibase-system-"))
    token = token or secret_token()
    marker = uuid.uuid4().hex
    started: dict[str, EmulatorProcess] = {}
    cluster: PostgresCluster | None = None
    stack: AirflowStack | None = None
    try:
        if isinstance(dags, Path) and dags.is_dir():
            dags_folder = dags
        else:
            dags_folder = stage_dags(workdir / "dags", [dags] if isinstance(dags, Path) else dags)
        emulator_env = {**base_env(), MARKER_VAR: marker}
        for conn_id, options in (emulators or {"predibase_default": {}}).items():
            started[conn_id] = EmulatorProcess(conn_id, workdir, token, env=emulator_env, **options)
            started[conn_id].start()
        for emulator in started.values():
            emulator.wait_ready()
        database_url = None
        if database == "postgres":
            cluster = PostgresCluster(workdir / "postgres")
            try:
                cluster.start()
            except (StackError, OSError, subprocess.SubprocessError) as error:
                raise PostgresUnavailable(str(error)) from error
            database_url = cluster.url
        elif database != "sqlite":
            raise ValueError(f"database must be sqlite or postgres, got {database!r}")
        stack = AirflowStack(
            workdir,
            dags_folder,
            database_url=database_url,
            connections={c: e.connection() for c, e in started.items()},
            env={k: v.replace("{workdir}", str(workdir)) for k, v in (env or {}).items()},
            settings=settings,
            run_marker=marker,
        )
        stack.start()
        yield stack, started
    finally:
        if stack is not None:
            stack.stop()
        for emulator in started.values():
            emulator.stop()
        if cluster is not None:
            cluster.stop()
        kill_marked(marker)
        if not keep_workdir:
            shutil.rmtree(workdir, ignore_errors=True)
