"""Never start a second GPU job for one task instance.

Each job this provider starts carries a deterministic **marker** in its description:
``[airflow:<key>/c<cycle>/g<generation>]``.

* ``<key>`` hashes (dag_id, task_id, run_id, map_index): the task instance.
* ``<cycle>`` counts the user's clears. Airflow sets ``max_tries = try_number + retries``
  when a task is cleared and leaves it alone on a retry, so ``max_tries - retries`` changes
  exactly when a user clears the task (Airflow's own task runner reads it the same way).
* ``<generation>`` counts the jobs this task instance has started.

Looking the marker up through the list endpoint finds the job after a worker crash, a
retry, a triggerer restart, or a create POST whose response was lost, on every Airflow
version. Airflow 3.3's task state store (which survives retries and clears) also remembers
the job ID, in case a platform ever drops descriptions.

What happens when the task runs again:

=========================================  ============================================
latest job for this task instance          action
=========================================  ============================================
none                                       start generation 1
still running (any non-terminal status)    re-attach and wait (a retry, or a clear of a
                                           waiting task)
failed, cancelled or being cancelled       start the next generation (that is a retry)
succeeded, same clear cycle                re-attach: reuse the result (crash recovery)
succeeded, earlier clear cycle             a user clear: start the next generation,
                                           unless ``rerun_on_clear=False`` (then reuse)
=========================================  ============================================
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

from airflow_predibase.client.errors import OutcomeUnknownError

MARKER_RE = re.compile(r"\[airflow:(?P<key>[0-9a-f]{16})/c(?P<cycle>\d+)/g(?P<gen>\d+)\]")

_JOB_ID = "predibase_job_id"
#: Seconds to wait between looks for a job whose create response was lost: the list may
#: lag the create, and a struggling server is why the response was lost.
LOST_CREATE_LOOKS = (0.0, 2.0, 5.0)


class _Job(Protocol):
    id: str
    description: str | None

    @property
    def status(self) -> Any: ...


JobT = TypeVar("JobT", bound=_Job)


@dataclass(frozen=True)
class Marker:
    """Where a job stands in its task instance's history."""

    key: str
    cycle: int
    generation: int

    def __str__(self) -> str:
        return f"[airflow:{self.key}/c{self.cycle}/g{self.generation}]"


def task_key(context: Any) -> str:
    """A stable 16-hex key for this task instance (the same across tries and clears)."""
    ti = context["ti"]
    map_index = getattr(ti, "map_index", -1)
    raw = f"{ti.dag_id}\x1f{ti.task_id}\x1f{ti.run_id}\x1f{map_index}"
    return hashlib.sha256(raw.encode()).hexdigest()[:16]


def clear_cycle(context: Any) -> int:
    """How many times a user has cleared this task instance (0 before any clear)."""
    ti = context["ti"]
    retries = getattr(getattr(ti, "task", None), "retries", 0) or 0
    return max(int(getattr(ti, "max_tries", retries) or 0) - int(retries), 0)


def with_marker(description: str | None, marker: Marker) -> str:
    return f"{description} {marker}" if description else str(marker)


def marker_of(job: _Job, key: str) -> Marker | None:
    """The marker `job` was started with for `key`, or None if it is not ours."""
    for match in MARKER_RE.finditer(job.description or ""):
        if match["key"] == key:
            return Marker(key, int(match["cycle"]), int(match["gen"]))
    return None


class Ledger:
    """The task state store where Airflow has one (3.3+); a no-op elsewhere."""

    def __init__(self, context: Any) -> None:
        self._store = context.get("task_state_store")

    def remember(self, job_id: str) -> None:
        if self._store is not None:
            self._store.set(_JOB_ID, job_id)

    def remembered(self) -> str | None:
        return None if self._store is None else self._store.get(_JOB_ID)


@dataclass
class Resolution(Generic[JobT]):
    """The job this try works with, and how it was obtained."""

    job: JobT
    generation: int
    action: str  # "created", "reattached" or "reused"


def resolve_job(
    *,
    key: str,
    cycle: int,
    ledger: Ledger,
    list_jobs: Callable[[], Sequence[JobT]],
    get_job: Callable[[str], JobT],
    create: Callable[[str], JobT],
    description: str | None,
    rerun_on_clear: bool,
    log: Any,
    sleep: Callable[[float], None] = time.sleep,
) -> Resolution[JobT]:
    """Find this task instance's job or start one; see the module docstring for the rules.

    `create` receives the full description (with the marker) and sends the create POST.
    """
    ours = sorted(
        ((m, job) for job in list_jobs() if (m := marker_of(job, key)) is not None),
        key=lambda pair: pair[0].generation,
    )
    remembered = ledger.remembered()
    if not ours and remembered:
        # The store knows a job the list did not show as ours (e.g. a platform that does
        # not keep descriptions): trust the store.
        ours = [(Marker(key, cycle, 1), get_job(remembered))]
    next_generation = 1
    if ours:
        marker, latest = ours[-1]
        status = latest.status
        next_generation = marker.generation + 1
        if not status.is_terminal and not status.is_winding_down:
            log.info("re-attaching to job %s (%s, %s)", latest.id, marker, status)
            return Resolution(latest, marker.generation, "reattached")
        if status.is_success:
            if marker.cycle == cycle or not rerun_on_clear:
                log.info("reusing completed job %s (%s)", latest.id, marker)
                return Resolution(latest, marker.generation, "reused")
            log.info("task was cleared after job %s finished: starting a new job", latest.id)
        else:
            log.info("previous job %s ended %s: starting a new job", latest.id, status)

    marker = Marker(key, cycle, next_generation)
    full_description = with_marker(description, marker)
    try:
        return Resolution(create(full_description), next_generation, "created")
    except OutcomeUnknownError as error:
        log.warning("create outcome unknown (%s); looking for the job by its marker", error)
    for pause in LOST_CREATE_LOOKS:
        sleep(pause)
        for job in list_jobs():
            if marker_of(job, key) == marker:
                log.info("found job %s created by the lost request", job.id)
                return Resolution(job, next_generation, "reattached")
    log.info("no job was created by the lost request; creating it again")
    return Resolution(create(full_description), next_generation, "created")
