"""Never start a second GPU job for one task instance.

Two records, so that re-attaching works on every Airflow version and for every failure:

* A deterministic **marker** in the job's description: ``[airflow:<key>/g<generation>]``.
  ``<key>`` hashes (dag_id, task_id, run_id, map_index); the generation counts the jobs this
  task instance has started. Looking it up through the list endpoint finds the job after a
  worker crash, a retry, or a create POST whose response was lost.
* Airflow 3.3's **task state store** (absent on older versions), which survives retries and
  clears. It records when the task *finished* with a job, which is how a user's "clear" of a
  succeeded task is told apart from a retry after a crash.

What happens when the task runs again:

=========================================  ============================================
latest job for this task instance          action
=========================================  ============================================
none                                       start generation 1
still running (any non-terminal status)    re-attach and wait
failed, cancelled or being cancelled       start the next generation (that is a retry)
succeeded, task never finished with it     re-attach: reuse the result (crash recovery)
succeeded, task already finished with it   a user clear: start the next generation,
                                           unless ``rerun_on_clear=False`` (then reuse)
=========================================  ============================================
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

from airflow_predibase.client.errors import OutcomeUnknownError

MARKER_RE = re.compile(r"\[airflow:(?P<key>[0-9a-f]{16})/g(?P<gen>\d+)\]")

_JOB_ID = "predibase_job_id"
_FINISHED = "predibase_finished_job_id"


class _Job(Protocol):
    id: str
    description: str | None

    @property
    def status(self) -> Any: ...


JobT = TypeVar("JobT", bound=_Job)


def task_key(context: Any) -> str:
    """A stable 16-hex key for this task instance (the same across tries and clears)."""
    ti = context["ti"]
    map_index = getattr(ti, "map_index", -1)
    raw = f"{ti.dag_id}\x1f{ti.task_id}\x1f{ti.run_id}\x1f{map_index}"
    return hashlib.sha256(raw.encode()).hexdigest()[:16]


def with_marker(description: str | None, key: str, generation: int) -> str:
    marker = f"[airflow:{key}/g{generation}]"
    return f"{description} {marker}" if description else marker


def generation_of(job: _Job, key: str) -> int | None:
    """The generation `job` was started as for `key`, or None if it is not ours."""
    for match in MARKER_RE.finditer(job.description or ""):
        if match["key"] == key:
            return int(match["gen"])
    return None


class Ledger:
    """The task state store where Airflow has one (3.3+); a no-op elsewhere."""

    def __init__(self, context: Any) -> None:
        self._store = context.get("task_state_store")

    @property
    def available(self) -> bool:
        return self._store is not None

    def remember(self, job_id: str) -> None:
        if self._store is not None:
            self._store.set(_JOB_ID, job_id)

    def remembered(self) -> str | None:
        return None if self._store is None else self._store.get(_JOB_ID)

    def mark_finished(self, job_id: str) -> None:
        if self._store is not None:
            self._store.set(_FINISHED, job_id)

    def finished_with(self) -> str | None:
        return None if self._store is None else self._store.get(_FINISHED)


@dataclass
class Resolution(Generic[JobT]):
    """The job this try works with, and how it was obtained."""

    job: JobT
    generation: int
    action: str  # "created", "reattached" or "reused"


def resolve_job(
    *,
    key: str,
    ledger: Ledger,
    list_jobs: Callable[[], Sequence[JobT]],
    get_job: Callable[[str], JobT],
    create: Callable[[str], JobT],
    description: str | None,
    rerun_on_clear: bool,
    log: Any,
) -> Resolution[JobT]:
    """Find this task instance's job or start one; see the module docstring for the rules.

    `create` receives the full description (with marker) and sends the create POST.
    """
    ours = sorted(
        ((gen, job) for job in list_jobs() if (gen := generation_of(job, key)) is not None),
        key=lambda pair: pair[0],
    )
    remembered = ledger.remembered()
    if not ours and remembered:
        # The store knows a job the list did not show as ours (e.g. a platform that does
        # not keep descriptions): trust the store.
        ours = [(1, get_job(remembered))]
    next_generation = 1
    if ours:
        generation, latest = ours[-1]
        status = latest.status
        next_generation = generation + 1
        if not status.is_terminal and not status.is_winding_down:
            log.info("re-attaching to job %s (generation %d, %s)", latest.id, generation, status)
            return Resolution(latest, generation, "reattached")
        if status.is_success:
            cleared = ledger.finished_with() == latest.id
            if not (cleared and rerun_on_clear):
                log.info("reusing completed job %s (generation %d)", latest.id, generation)
                return Resolution(latest, generation, "reused")
            log.info("task was cleared after job %s finished: starting a new job", latest.id)
        else:
            log.info("previous job %s ended %s: starting a new job", latest.id, status)

    full_description = with_marker(description, key, next_generation)
    try:
        job = create(full_description)
    except OutcomeUnknownError as error:
        log.warning("create outcome unknown (%s); looking for the job by its marker", error)
        for job in list_jobs():
            if generation_of(job, key) == next_generation:
                log.info("found job %s created by the lost request", job.id)
                return Resolution(job, next_generation, "reattached")
        log.info("no job was created by the lost request; creating it again")
        job = create(full_description)
    return Resolution(job, next_generation, "created")
