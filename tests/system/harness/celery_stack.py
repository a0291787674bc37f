"""A distributed Airflow: the CeleryExecutor on PostgreSQL, a private Redis, N workers and N
triggerers, all on this machine.

`CeleryStack` is an `AirflowStack` with more components: ``celery-worker-<i>`` (``airflow
celery worker --celery-hostname worker-<i>@%h``, each with its own log-server port) and
``triggerer``, ``triggerer-2``, ... (each with its own trigger log-server port). It knows
which triggerer component owns which ``TriggererJob`` row (they are started one after the
other and each start's new row is recorded), and which worker a task process runs under
(the process tree), so a test can kill exactly the one it means.

`running_celery_stack` starts it all (emulators, Redis, a PostgreSQL cluster, Airflow) as
one context manager, and tears everything down on exit whatever happened.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import shutil
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, cast

from .emulator_process import EmulatorProcess
from .process_tree import descendants, kill_if_same
from .processes import ManagedProcess, bin_path, free_port, tail
from .redis import RedisServer
from .running import running_stack
from .stack import AirflowStack, StackSettings
from .waiting import StackError, wait_until


def celery_settings(
    broker_url: str, database_url: str, *, worker_concurrency: int = 4
) -> dict[str, str]:
    """The ``AIRFLOW__...`` settings of a Celery stack (docs/system_tests.md says why)."""
    return {
        "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
        "AIRFLOW__CELERY__BROKER_URL": broker_url,
        # Task states go through the metadata database, not Redis.
        "AIRFLOW__CELERY__RESULT_BACKEND": f"db+{database_url}",
        "AIRFLOW__CELERY__WORKER_CONCURRENCY": str(worker_concurrency),
        # A worker reserves no more than it runs: a killed worker takes no queued task with it
        # (with acks_late, a reserved message would come back only after visibility_timeout).
        "AIRFLOW__CELERY__WORKER_PREFETCH_MULTIPLIER": "1",
        # Airflow's own default, set so that it is explicit (and not warned about): a message
        # a killed worker had taken comes back after this long, by which time the scheduler
        # has long failed that try for its missing heartbeat.
        "AIRFLOW__CELERY_BROKER_TRANSPORT_OPTIONS__VISIBILITY_TIMEOUT": "86400",
        # Sending a task to Redis may take more than the default 1 s on 2 loaded cores.
        "AIRFLOW__CELERY__OPERATION_TIMEOUT": "5",
        # A worker that died SIGKILLed stops heartbeating its task instances: fail them after
        # 20 s (not 300 s), checked every 2 s, so the retry starts within half a minute.
        "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "20",
        "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "2",
    }


class CeleryStack(AirflowStack):
    """`AirflowStack` with Celery workers and several triggerers (see the module docstring).

    :param broker_url: the Redis URL (``[celery] broker_url``).
    :param workers: how many ``airflow celery worker`` processes.
    :param triggerers: how many ``airflow triggerer`` processes.
    :param worker_concurrency: task slots per worker (``[celery] worker_concurrency``).
    """

    def __init__(
        self,
        workdir: Path,
        dags_folder: Path,
        *,
        broker_url: str,
        database_url: str,
        workers: int = 2,
        triggerers: int = 2,
        worker_concurrency: int = 4,
        connections: Mapping[str, Mapping[str, Any] | str] | None = None,
        env: Mapping[str, str] | None = None,
        settings: StackSettings | None = None,
        run_marker: str | None = None,
    ) -> None:
        settings = settings or StackSettings()
        settings = dataclasses.replace(
            settings,
            extra_env={
                **celery_settings(broker_url, database_url, worker_concurrency=worker_concurrency),
                **settings.extra_env,
            },
        )
        super().__init__(
            workdir,
            dags_folder,
            database_url=database_url,
            connections=connections,
            env=env,
            settings=settings,
            run_marker=run_marker,
        )
        airflow = bin_path("airflow")
        logs = workdir / "components"
        self.worker_names = [f"celery-worker-{i}" for i in range(1, workers + 1)]
        for i, name in enumerate(self.worker_names, start=1):
            # Each worker serves its task logs on a port of its own.
            own = {**self.env, "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port())}
            argv = [airflow, "celery", "worker", "--celery-hostname", f"worker-{i}@%h"]
            self.components[name] = ManagedProcess(name, argv, own, logs / f"{name}.log")
        self.triggerer_names = ["triggerer"] + [f"triggerer-{i}" for i in range(2, triggerers + 1)]
        for name in self.triggerer_names[1:]:
            own = {**self.env, "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port())}
            self.components[name] = ManagedProcess(
                name, [airflow, "triggerer"], own, logs / f"{name}.log"
            )
        #: triggerer component -> the TriggererJob ids of its starts, oldest first.
        self.triggerer_jobs: dict[str, list[int]] = {name: [] for name in self.triggerer_names}

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self, timeout: float = 240.0) -> None:
        """Migrate; start everything; the triggerers one after the other (to tell their
        jobs apart); wait until healthy and every worker is ready."""
        self.migrate()
        for name in ("api-server", "scheduler", "dag-processor", *self.worker_names):
            self.components[name].start()
        for name in self.triggerer_names:
            self.start_component(name)
        self.wait_healthy(timeout)
        for name in self.worker_names:
            self.wait_worker_ready(name, timeout)

    def start_component(self, name: str) -> None:
        if name not in self.triggerer_names:
            super().start_component(name)
            return
        known = set(self.db.triggerer_job_ids())
        super().start_component(name)

        def new_job() -> list[int]:
            self.check_alive()
            return [j for j in self.db.triggerer_job_ids() if j not in known]

        [job_id] = wait_until(new_job, 120, f"{name} to register its job", interval=0.3)
        self.triggerer_jobs[name].append(job_id)

    def wait_worker_ready(self, name: str, timeout: float = 120.0) -> None:
        process = self.components[name]
        starts = process.starts

        def ready() -> bool:
            self.check_alive()
            text = tail(process.log_path, 200_000)
            return text.count(" ready.") >= starts

        wait_until(ready, timeout, f"{name} to be ready", interval=0.5)

    def stop(self) -> list[int]:
        owned = self.owned_processes()
        for name in [*self.worker_names, *self.triggerer_names[1:]]:
            self.components[name].stop()
        return kill_if_same(owned) + super().stop()

    # -- who is who ----------------------------------------------------------------------------

    def triggerer_of_job(self, job_id: int) -> str:
        """The triggerer component whose start registered this TriggererJob."""
        for name, jobs in self.triggerer_jobs.items():
            if job_id in jobs:
                return name
        raise StackError(f"triggerer job {job_id} is none of {self.triggerer_jobs}")

    def worker_of(self, pid: int) -> str | None:
        """The worker component a process runs under (None: not under a live worker)."""
        for name in self.worker_names:
            process = self.components[name]
            if process.running and process.pid and pid in descendants([process.pid]):
                return name
        return None

    def worker_log(self, name: str) -> str:
        return self.components[name].log_path.read_text(errors="replace")


@contextlib.contextmanager
def running_celery_stack(
    dags: Iterable[Path],
    *,
    emulators: Mapping[str, Mapping[str, Any]],
    env: Mapping[str, str] | None = None,
    settings: StackSettings | None = None,
    workers: int = 2,
    triggerers: int = 2,
    worker_concurrency: int = 4,
    token: str | None = None,
    keep_workdir: bool = False,
) -> Iterator[tuple[CeleryStack, dict[str, EmulatorProcess]]]:
    """Emulators, a private Redis and PostgreSQL cluster, and a `CeleryStack`; everything
    stopped and removed on exit. Raises `RedisUnavailable` / `PostgresUnavailable` when
    either cannot be started (``{workdir}`` in an `env` value becomes the temp dir)."""
    redis_dir = Path(tempfile.mkdtemp(prefix="predibase-celery-redis-"))
    try:
        redis = RedisServer(redis_dir)
        redis.start()
        try:
            factory = functools.partial(
                CeleryStack,
                broker_url=redis.url,
                workers=workers,
                triggerers=triggerers,
                worker_concurrency=worker_concurrency,
            )
            with running_stack(
                dags,
                emulators=emulators,
                database="postgres",
                env=env,
                settings=settings,
                token=token,
                keep_workdir=keep_workdir,
                stack_factory=factory,
            ) as (stack, started):
                yield cast(CeleryStack, stack), started
        finally:
            redis.stop()
    finally:
        if not keep_workdir:
            shutil.rmtree(redis_dir, ignore_errors=True)
