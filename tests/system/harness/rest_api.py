"""The Airflow 3 public REST API (``/api/v2``) as a test uses it: what a user does in the UI.

Trigger, mark, clear, read task instances, extra links, XCom and the audit log. It works
against any Airflow that lets REST skip the login (``simple_auth_manager_all_admins``);
`AirflowStack` is one, and adds `check_alive` so that waits fail at once when a component
it started has died.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterable, Mapping
from typing import Any

import httpx

from .waiting import StackError, wait_until

TERMINAL_RUN_STATES = frozenset({"success", "failed"})


class AirflowRestClient:
    """REST calls on the Airflow at `api_url` (e.g. ``http://127.0.0.1:8080``)."""

    def __init__(self, api_url: str) -> None:
        self.api_url = api_url
        self._api: httpx.Client | None = None
        self._write_lock = threading.Lock()

    def check_alive(self) -> None:
        """Raise if the Airflow behind the API is known to be dead (nothing known here)."""

    def close(self) -> None:
        if self._api is not None:
            self._api.close()
            self._api = None

    @property
    def api(self) -> httpx.Client:
        if self._api is None:
            self._api = httpx.Client(base_url=self.api_url, timeout=30)
        return self._api

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
        # A DAG may start paused (the examples do: is_paused_upon_creation=True), and a run
        # of a paused DAG is never scheduled: unpause it first, as a user would.
        self.rest("PATCH", f"/dags/{dag_id}", json={"is_paused": False})
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
