"""Exactly one GPU job per Airflow installation, task instance and request.

Each job this provider starts carries a deterministic **marker** in its description:
``[airflow:<key>/c<cycle>/g<generation>/r<request>]``.

* ``<key>`` hashes this Airflow installation's ID (the ``predibase_installation_id``
  Variable, a random UUID created on first use) with (dag_id, task_id, run_id, map_index):
  the task instance, in this installation only. Two installations running the same DAG on
  one tenant compute different keys, so they never see each other's jobs.
* ``<cycle>`` counts the user's clears. Airflow sets ``max_tries = try_number + retries``
  when a task is cleared and leaves it alone on a retry, so ``max_tries - retries`` changes
  exactly when a user clears the task (Airflow's own task runner reads it the same way).
* ``<generation>`` counts the jobs this task instance has started.
* ``<request>`` hashes the canonical request (its JSON body without the description): a
  job is reused only for the request it was started with.

Looking the marker up through the (paged) list endpoint finds the job after a worker crash,
a retry, a triggerer restart, or a create POST whose answer was lost, on every Airflow
version. Airflow 3.3's task state store (which survives retries and clears, and belongs to
this installation) also remembers the job ID; it is read on every run, so a list that lags
or misses a job cannot start a second one.

What happens when the task runs again, from the latest job of this task instance that was
started for the same request:

=========================================  ============================================
that job                                   action
=========================================  ============================================
none                                       start the next generation (1 for the first)
still running (any non-terminal status)    re-attach and wait (a retry, or a clear of a
                                           waiting task)
failed, cancelled or being cancelled       start the next generation (that is a retry)
succeeded, same clear cycle                re-attach: reuse the result (crash recovery)
succeeded, earlier clear cycle             a user clear: start the next generation,
                                           unless ``rerun_on_clear=False`` (then reuse)
=========================================  ============================================

A create whose outcome is unknown (timeout, dropped connection, 5xx, a garbled 200, or an
answer naming a job that is not ours) is not sent again until the marker has been looked
for, with back-off, for ``lost_create_window`` seconds.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

from airflow.providers.common.compat.sdk import AirflowException

from airflow_predibase.client.errors import (
    NotFoundError,
    OutcomeUnknownError,
    PredibaseError,
    ResponseValidationError,
)

#: The marker; ``/r<request>`` is absent from markers written before request identity.
MARKER_RE = re.compile(
    r"\[airflow:(?P<key>[0-9a-f]{16})/c(?P<cycle>\d+)/g(?P<gen>\d+)"
    r"(?:/r(?P<request>[0-9a-f]{12}))?\]"
)

_JOB_ID = "predibase_job_id"

#: The Airflow Variable holding this installation's ID.
INSTALLATION_VARIABLE = "predibase_installation_id"
#: After creating the installation ID: wait, then read it back, so that workers racing to
#: create it on first use all adopt the one written last.
INSTALLATION_SETTLE_SECONDS = 1.0
#: The installation ID used where no Airflow metadata database is reachable (an operator's
#: `execute` called outside a task runner, as in unit tests).
#: Outside a task runner: one ID per process, so two scripts never share a job.
DETACHED_INSTALLATION = f"detached-{uuid.uuid4().hex[:12]}"

#: Pauses between looks within the window: at once, then 1 s, 2 s, 3 s, ... up to 10 s
#: (about 15 paged lists in the default 120 s window).
LOST_CREATE_PAUSE_STEP = 1.0
LOST_CREATE_MAX_PAUSE = 10.0
#: Create POSTs per try whose outcome stays unknown before the try fails.
MAX_CREATE_ATTEMPTS = 3


class _Job(Protocol):
    id: str
    description: str | None

    @property
    def status(self) -> Any: ...

    def model_dump(self, **kwargs: Any) -> dict[str, Any]: ...


JobT = TypeVar("JobT", bound=_Job)


@dataclass(frozen=True)
class Marker:
    """Where a job stands in its task instance's history."""

    key: str
    cycle: int
    generation: int
    request: str | None = None
    """The request hash; None in a marker written before request identity."""

    def __str__(self) -> str:
        request = f"/r{self.request}" if self.request else ""
        return f"[airflow:{self.key}/c{self.cycle}/g{self.generation}{request}]"


@dataclass(frozen=True)
class Identity:
    """Who may reuse a job: this installation's task instance, for this request."""

    key: str
    """Installation and task instance."""
    legacy_key: str
    """The task instance alone, as provider versions before installation IDs hashed it."""
    cycle: int
    request: str
    """Hash of the canonical request."""
    fields: Mapping[str, Any] = field(default_factory=dict)
    """The canonical request, to name the fields that changed."""


def installation_id(log: Any, *, sleep: Callable[[float], None] = time.sleep) -> str:
    """This Airflow installation's ID, created on first use in its metadata database.

    Read and written through the Task SDK (``airflow.sdk.Variable``), so it works in
    workers (through the Execution API) and in ``airflow dags test``. A secrets backend or
    an ``AIRFLOW_VAR_PREDIBASE_INSTALLATION_ID`` environment variable can pin it. Two
    workers that both find it missing both write one; each waits
    `INSTALLATION_SETTLE_SECONDS` and reads it back, so both use the one written last
    unless one stalled for longer than that between its read and its write.
    """
    from airflow.sdk import Variable

    found = Variable.get(INSTALLATION_VARIABLE, default=None)
    if found:
        return str(found).strip()
    if not _in_task_runner():
        log.warning(
            "no Airflow metadata database to keep %s in (not running in a task runner): using %r",
            INSTALLATION_VARIABLE,
            DETACHED_INSTALLATION,
        )
        return DETACHED_INSTALLATION
    Variable.set(
        INSTALLATION_VARIABLE,
        uuid.uuid4().hex,
        description="Identifies this Airflow installation in the Predibase jobs it starts "
        "(airflow-provider-predibase). Never copy it to another installation; changing it "
        "orphans running jobs.",
    )
    sleep(INSTALLATION_SETTLE_SECONDS)
    settled = Variable.get(INSTALLATION_VARIABLE, default=None)
    if not settled:
        # Variable.set reports no error from the Execution API: a refused write shows here.
        raise AirflowException(
            f"could not create the Airflow Variable {INSTALLATION_VARIABLE!r}, which tells this "
            "installation's Predibase jobs from another's: set it to any unique text (or set "
            f"AIRFLOW_VAR_{INSTALLATION_VARIABLE.upper()}), the same on every worker"
        )
    settled = str(settled).strip()
    log.info("created this installation's %s: %s", INSTALLATION_VARIABLE, settled)
    return settled


def _in_task_runner() -> bool:
    try:
        from airflow.sdk.execution_time import task_runner
    except ImportError:  # pragma: no cover - every supported Airflow has it
        return False
    return getattr(task_runner, "SUPERVISOR_COMMS", None) is not None


def _task_instance_parts(context: Any) -> str:
    ti = context["ti"]
    map_index = getattr(ti, "map_index", -1)
    return f"{ti.dag_id}\x1f{ti.task_id}\x1f{ti.run_id}\x1f{map_index}"


def task_key(context: Any, installation: str | None = None) -> str:
    """A stable 16-hex key for this task instance in this installation (the same across
    tries and clears). Without `installation`: the key older provider versions wrote."""
    raw = _task_instance_parts(context)
    if installation is not None:
        raw = f"{installation}\x1e{raw}"
    return hashlib.sha256(raw.encode()).hexdigest()[:16]


def clear_cycle(context: Any) -> int:
    """How many times a user has cleared this task instance (0 before any clear)."""
    ti = context["ti"]
    retries = getattr(getattr(ti, "task", None), "retries", 0) or 0
    return max(int(getattr(ti, "max_tries", retries) or 0) - int(retries), 0)


def canonical_request(body: Mapping[str, Any]) -> dict[str, Any]:
    """The request body that identifies a job: everything but the description."""
    return {k: v for k, v in body.items() if k != "description"}


def request_hash(body: Mapping[str, Any]) -> str:
    text = json.dumps(canonical_request(body), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def identity(context: Any, installation: str, body: Mapping[str, Any]) -> Identity:
    """The identity of the job this try needs; `body` is the request as sent."""
    return Identity(
        key=task_key(context, installation),
        legacy_key=task_key(context),
        cycle=clear_cycle(context),
        request=request_hash(body),
        fields=canonical_request(body),
    )


def with_marker(description: str | None, marker: Marker) -> str:
    return f"{description} {marker}" if description else str(marker)


def _markers(job: _Job) -> list[Marker]:
    return [
        Marker(m["key"], int(m["cycle"]), int(m["gen"]), m["request"])
        for m in MARKER_RE.finditer(getattr(job, "description", None) or "")
    ]


def marker_of(job: _Job, key: str) -> Marker | None:
    """The marker `job` was started with for `key`, or None if it is not ours."""
    return next((m for m in _markers(job) if m.key == key), None)


def changed_fields(job: _Job, fields: Mapping[str, Any]) -> list[str]:
    """The request fields the job reports with another value (fields it does not report
    cannot be compared)."""
    reported = job.model_dump(mode="json", by_alias=True)
    return sorted(
        name
        for name, value in fields.items()
        if reported.get(name) is not None and reported[name] != value
    )


class Ledger:
    """The task state store where Airflow has one (3.3+); a no-op elsewhere."""

    def __init__(self, context: Any) -> None:
        self._store = context.get("task_state_store")

    def remember(self, job_id: str) -> None:
        if self._store is not None:
            self._store.set(_JOB_ID, job_id)

    def remembered(self) -> str | None:
        return None if self._store is None else self._store.get(_JOB_ID)

    def forget(self) -> None:
        if self._store is not None:
            self._store.delete(_JOB_ID)


@dataclass
class Resolution(Generic[JobT]):
    """The job this try works with, and how it was obtained."""

    job: JobT
    generation: int
    action: str  # "created", "reattached" or "reused"


@dataclass
class JobCalls(Generic[JobT]):
    """How to reach the platform: list (every page), get, and create with a description."""

    list_jobs: Callable[[], Sequence[JobT]]
    get_job: Callable[[str], JobT]
    create: Callable[[str], JobT]


def _own_jobs(jobs: Sequence[JobT], who: Identity) -> dict[str, tuple[Marker, JobT]]:
    """This installation's jobs of this task instance, by ID."""
    found: dict[str, tuple[Marker, JobT]] = {}
    for job in jobs:
        marker = marker_of(job, who.key)
        if marker is not None:
            found[job.id] = (marker, job)
    return found


def _remembered_job(
    ledger: Ledger, get_job: Callable[[str], JobT], who: Identity, log: Any
) -> tuple[Marker, JobT] | None:
    """The job the task state store remembers, if it is still there and this task's."""
    job_id = ledger.remembered()
    if not job_id:
        return None
    try:
        job = get_job(job_id)
    except NotFoundError:
        log.warning("remembered job %s no longer exists (404): forgetting it", job_id)
        ledger.forget()
        return None
    if job.id != job_id:
        log.warning("asked for remembered job %s, got job %s: ignoring it", job_id, job.id)
        return None
    markers = _markers(job)
    own = next((m for m in markers if m.key in (who.key, who.legacy_key)), None)
    if own is not None:
        return own, job
    if markers:
        # The store belongs to this task instance in this installation, so a job it
        # remembers is ours even when its key differs: the installation ID changed (a
        # first-use race, or the Variable was deleted). Taking it is what the store is for.
        log.warning(
            "remembered job %s carries the marker %s, not this installation's key %s: the "
            "installation ID (Variable %s) changed; treating the job as this task's",
            job_id,
            markers[0],
            who.key,
            INSTALLATION_VARIABLE,
        )
        first = markers[0]
        return Marker(who.key, first.cycle, first.generation, first.request), job
    # No marker at all (a platform that drops descriptions): the store is this task
    # instance's own, so the job is ours, counted in the current clear cycle.
    return Marker(who.key, who.cycle, 1), job


def _same_request(marker: Marker, job: _Job, who: Identity) -> bool:
    if marker.request is not None:
        return marker.request == who.request
    # Started before request identity, or a platform that drops descriptions: compare
    # what the job reports of its request.
    return not changed_fields(job, who.fields)


def resolve_job(
    *,
    who: Identity,
    ledger: Ledger,
    calls: JobCalls[JobT],
    description: str | None,
    rerun_on_clear: bool,
    log: Any,
    lost_create_window: float,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> Resolution[JobT]:
    """Find this task instance's job for this request or start one (module docstring)."""
    ours = _own_jobs(calls.list_jobs(), who)
    remembered = _remembered_job(ledger, calls.get_job, who, log)
    if remembered is not None:
        ours.setdefault(remembered[1].id, remembered)
    history = sorted(ours.values(), key=lambda pair: pair[0].generation)
    next_generation = history[-1][0].generation + 1 if history else 1
    same = [pair for pair in history if _same_request(*pair, who)]
    if history and (not same or same[-1] is not history[-1]):
        _log_request_change(history[-1], who, log)
    if same:
        marker, latest = same[-1]
        status = latest.status
        if not status.is_terminal and not status.is_winding_down:
            log.info("re-attaching to job %s (%s, %s)", latest.id, marker, status)
            return Resolution(latest, marker.generation, "reattached")
        if status.is_success:
            if marker.cycle == who.cycle or not rerun_on_clear:
                log.info("reusing completed job %s (%s)", latest.id, marker)
                return Resolution(latest, marker.generation, "reused")
            log.info("task was cleared after job %s finished: starting a new job", latest.id)
        else:
            log.info("previous job %s ended %s: starting a new job", latest.id, status)

    marker = Marker(who.key, who.cycle, next_generation, who.request)
    watch = _Watch(calls.list_jobs, marker, log, lost_create_window, sleep, clock)
    job, action = create_exactly_once(calls.create, with_marker(description, marker), watch, log)
    return Resolution(job, next_generation, action)


def _log_request_change(latest: tuple[Marker, _Job], who: Identity, log: Any) -> None:
    marker, job = latest
    fields = changed_fields(job, who.fields)
    named = f"fields: {', '.join(fields)}" if fields else "fields the platform does not report"
    log.warning(
        "request changed (%s) since job %s (%s) — starting a new job; job %s is left as it is",
        named,
        job.id,
        marker,
        job.id,
    )


@dataclass
class _Watch(Generic[JobT]):
    """Looks for the job with `marker` until it shows up or the window closes."""

    list_jobs: Callable[[], Sequence[JobT]]
    marker: Marker
    log: Any
    window: float
    sleep: Callable[[float], None]
    clock: Callable[[], float]
    looks: int = 0

    def find(self) -> JobT | None:
        """The job, or None once a look at the end of the window found nothing.

        A look that fails (the server is struggling, which is likely why the create answer
        was lost) does not count: when the window closes on a failed look, the error is
        raised rather than the create sent again blind.
        """
        deadline = self.clock() + self.window
        pause = 0.0
        while True:
            self.sleep(pause)
            self.looks += 1
            try:
                for job in self.list_jobs():
                    if marker_of(job, self.marker.key) == self.marker:
                        self.log.info("found job %s with marker %s", job.id, self.marker)
                        return job
                failed: PredibaseError | None = None
            except PredibaseError as error:
                self.log.warning("looking for marker %s failed: %s", self.marker, error)
                failed = error
            left = deadline - self.clock()
            if left <= 0:
                if failed is not None:
                    raise failed
                return None
            pause = min(pause + LOST_CREATE_PAUSE_STEP, LOST_CREATE_MAX_PAUSE, left)


def create_exactly_once(
    create: Callable[[str], JobT], text: str, watch: _Watch[JobT], log: Any
) -> tuple[JobT, str]:
    """Send the create; when its outcome is unknown, look for the job before sending again.

    Returns the job and "created", or "reattached" when a lost create was found.
    """
    for attempt in range(1, MAX_CREATE_ATTEMPTS + 1):
        try:
            job = create(text)
        except (OutcomeUnknownError, ResponseValidationError) as error:
            reason = str(error)
        else:
            foreign = [m for m in _markers(job) if m != watch.marker]
            if not foreign or watch.marker in _markers(job):
                return job, "created"
            reason = f"the answer names job {job.id} with marker {foreign[0]}, not ours"
        log.warning(
            "create outcome unknown (%s); looking for marker %s for up to %gs",
            reason,
            watch.marker,
            watch.window,
        )
        found = watch.find()
        if found is not None:
            return found, "reattached"
        if attempt < MAX_CREATE_ATTEMPTS:
            log.info(
                "no job with marker %s appeared within %gs: the request created nothing; "
                "sending it again",
                watch.marker,
                watch.window,
            )
    raise OutcomeUnknownError(
        f"{MAX_CREATE_ATTEMPTS} create requests ended without a known outcome and no job with "
        f"marker {watch.marker} appeared; the next try looks for it again before creating"
    )
