"""`running_stack`: emulators, a database and Airflow as one context manager."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from .database import PostgresCluster, PostgresUnavailable
from .emulator_process import EmulatorProcess, secret_token
from .process_tree import kill_marked
from .processes import MARKER_VAR, base_env
from .stack import AirflowStack, StackSettings
from .waiting import StackError


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
    stack_factory: Callable[..., AirflowStack] = AirflowStack,
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
    :param stack_factory: builds the stack from `AirflowStack`'s arguments (e.g. a
        `functools.partial` of `CeleryStack` with its broker and workers).
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
        stack = stack_factory(
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
