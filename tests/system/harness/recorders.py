"""Background samplers of what passes too fast for a check at the end.

* `StateRecorder`: task-instance states over REST, so a test can show that a task really
  passed through ``deferred``, and how many were deferred at once.
* `TriggerTableRecorder`: every row the ``trigger`` table held (a row vanishes once its
  trigger fires).
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

import httpx

from .waiting import StackError

if TYPE_CHECKING:
    from .stack import AirflowStack


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
