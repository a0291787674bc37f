"""What the operator, sensor and trigger tests share: quick lifecycle profiles, and a task
context with the pieces Airflow's runtime hands an operator (the fixtures that start the
emulator are in tests/conftest.py)."""

from __future__ import annotations

import asyncio
import importlib
import json
import time
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pytest
from airflow import __version__ as AIRFLOW_VERSION
from packaging.version import Version

#: The task state store and the trigger's `on_kill` arrived in Airflow 3.3. `make test-compat`
#: runs this suite on 3.1, where tests of what they change are skipped, with the reason (-ra).
AIRFLOW_V_3_3_PLUS = Version(AIRFLOW_VERSION).release >= (3, 3)
needs_task_state_store = pytest.mark.skipif(
    AIRFLOW_V_3_3_PLUS is False,
    reason="needs Airflow 3.3 (task state store); on 3.1 only the description marker finds "
    "the job (docs/compatibility.md)",
)
needs_asset_state_store = pytest.mark.skipif(
    AIRFLOW_V_3_3_PLUS is False,
    reason="needs Airflow 3.3 (asset state store); before it a watcher trigger keeps what it "
    "has fired in memory (docs/assets.md)",
)
needs_trigger_on_kill = pytest.mark.skipif(
    AIRFLOW_V_3_3_PLUS is False,
    reason="needs Airflow 3.3 (trigger on_kill); on 3.1 Airflow never calls it, so killing a "
    "deferred task leaves the job running (docs/compatibility.md)",
)

#: Every lifecycle phase short, so a test waits fractions of a second, never zero.
QUICK_PROFILE = {
    "name": "quick",
    "dataset_connecting": 0.1,
    "finetuning_queued": 0.1,
    "finetuning_training": 0.4,
    "finetuning_stopping": 0.1,
    "deployment_pending": 0.1,
    "deployment_initializing": 0.2,
    "deployment_updating": 0.2,
    "deployment_deleting": 0.1,
    "deployment_cold_start": 0.0,
    "batch_queued": 0.1,
    "batch_running": 0.3,
}

#: Quick, except that training never ends on its own during a test.
STUCK_PROFILE = {
    **QUICK_PROFILE,
    "name": "stuck",
    "finetuning_training": 3600.0,
    "batch_running": 3600.0,
}


@dataclass
class RecordingTI:
    """The task instance an operator sees: identity and XCom pushes."""

    dag_id: str = "test_dag"
    task_id: str = "task"
    run_id: str = "manual__1"
    map_index: int = -1
    try_number: int = 1
    max_tries: int = 0
    task: Any = field(default_factory=lambda: SimpleNamespace(retries=0))
    xcoms: dict[str, Any] = field(default_factory=dict)
    pushed: list[str] = field(default_factory=list)  # every key pushed, in order

    def xcom_push(self, key: str, value: Any) -> None:
        self.xcoms[key] = value
        self.pushed.append(key)

    def xcom_pull(self, task_ids: str, key: str = "return_value") -> Any:
        assert task_ids == self.task_id, "only this task's own XComs are modelled"
        return self.xcoms.get(key)


class DictStateStore:
    """Airflow 3.3's task state store, kept in a dict (shared across 'tries' of a test)."""

    def __init__(self) -> None:
        self.data: dict[str, Any] = {}

    def get(self, key: str, default: Any = None) -> Any:
        return self.data.get(key, default)

    def set(self, key: str, value: Any, *, retention: Any = None) -> None:
        self.data[key] = value

    def delete(self, key: str) -> None:
        self.data.pop(key, None)

    def clear(self) -> None:
        self.data.clear()


def make_context(
    *,
    task_id: str = "task",
    run_id: str = "manual__1",
    store: DictStateStore | None = None,
    clears: int = 0,
) -> dict[str, Any]:
    """A fresh context for one try. Pass the same `store` to model a retry; `clears` is how
    many times a user cleared the task (Airflow raises `max_tries` on each clear)."""
    from airflow.sdk.execution_time.context import OutletEventAccessors

    return {
        "ti": RecordingTI(task_id=task_id, run_id=run_id, try_number=clears + 1, max_tries=clears),
        "task_state_store": store,
        # The real accessor: it keys events by asset name and URI (an Asset itself is not
        # hashable on Airflow 3.1).
        "outlet_events": OutletEventAccessors(),
    }


def run_deferred(
    operator: Any,
    context: dict[str, Any],
    *,
    resume_on: Any = None,
    triggers: list[str] | None = None,
) -> Any:
    """Execute until it defers, run the (serialization round-tripped) trigger to its first
    event, and resume the operator with it, as the triggerer and a worker would. A worker
    resumes a fresh operator object (from the parsed DAG): pass one as `resume_on`.
    `triggers` receives the trigger row as Airflow stores it (its JSON kwargs) and its repr,
    which the triggerer logs."""
    from airflow.providers.common.compat.sdk import TaskDeferred

    try:
        operator.execute(context)
    except TaskDeferred as deferred:
        classpath, kwargs = deferred.trigger.serialize()
        if triggers is not None:
            triggers.extend([json.dumps([classpath, kwargs], default=str), repr(deferred.trigger)])
        module, _, name = classpath.rpartition(".")
        trigger = getattr(importlib.import_module(module), name)(**json.loads(json.dumps(kwargs)))
        event = asyncio.run(_first_event(trigger))
        # As the task runner resumes it (sensors turn failures into skips there).
        resumed = operator if resume_on is None else resume_on
        return resumed.resume_execution(deferred.method_name, {"event": event.payload}, context)
    pytest.fail(f"{operator.task_id} did not defer")


async def _first_event(trigger: Any) -> Any:
    async for event in trigger.run():
        return event
    raise AssertionError("trigger ended without an event")


def upload(client: Any, name: str, rows: list[dict[str, Any]]) -> None:
    """A connected dataset, through the real upload flow."""
    content = "".join(json.dumps(r) + "\n" for r in rows).encode()
    client.upload_dataset(name, content, f"{name}.jsonl")
    deadline = time.monotonic() + 10
    while client.get_dataset(name).status != "connected":
        assert time.monotonic() < deadline, "dataset never connected"
        time.sleep(0.05)


def finetune_operator(**overrides: Any) -> Any:
    """A blocking FinetuneOperator on the `tickets` dataset and the `router` repo."""
    from airflow_predibase.operators.finetuning import FinetuneOperator

    params: dict[str, Any] = {
        "task_id": "finetune",
        "base_model": "qwen3-8b",
        "dataset": "tickets",
        "repo": "router",
        "poll_interval": 0.1,
        "deferrable": False,
    }
    params.update(overrides)
    return FinetuneOperator(**params)


def finetuning_jobs(emulator: Any) -> list[dict[str, Any]]:
    """Every fine-tuning job the emulator holds, oldest first."""
    found: list[dict[str, Any]] = emulator.admin.state()["finetuning_jobs"]
    return found


class Wiretap:
    """A recording reverse proxy in front of an emulator, over real HTTP: each request as it
    reached the emulator (method, path, JSON body), for settings the emulator does not show
    back. `connection_json()` is the emulator's connection, pointed at the proxy."""

    _DROP_REQUEST = frozenset({"host", "content-length", "connection", "accept-encoding"})
    _DROP_RESPONSE = frozenset(
        {"content-length", "transfer-encoding", "connection", "content-encoding"}
    )

    def __init__(self, emulator: Any) -> None:
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        import httpx

        self.emulator = emulator
        self.seen: list[tuple[str, str, Any]] = []
        upstream = httpx.Client(base_url=emulator.url, timeout=30.0)
        tap = self

        class Handler(BaseHTTPRequestHandler):
            def _forward(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    body = json.loads(raw) if raw else None
                except ValueError:
                    body = None
                tap.seen.append((self.command, self.path, body))
                headers = {
                    k: v for k, v in self.headers.items() if k.lower() not in tap._DROP_REQUEST
                }
                answer = upstream.request(self.command, self.path, content=raw, headers=headers)
                self.send_response(answer.status_code)
                for key, value in answer.headers.items():
                    if key.lower() not in tap._DROP_RESPONSE:
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(answer.content)))
                self.end_headers()
                self.wfile.write(answer.content)

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _forward

            def log_message(self, *args: Any) -> None:  # quiet
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._upstream = upstream
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def connection_json(self, **extra: Any) -> str:
        """The emulator's connection through the proxy; `extra` adds connection extras
        (``dialect="spec"`` forces a dialect)."""
        conn = json.loads(str(self.emulator.connection_json()).replace(self.emulator.url, self.url))
        conn["extra"] = {**(conn.get("extra") or {}), **extra}
        return json.dumps(conn)

    def bodies(self, method: str, path_part: str) -> list[Any]:
        """The JSON bodies of the `method` requests whose path contains `path_part`."""
        return [body for m, path, body in self.seen if m == method and path_part in path]

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._upstream.close()


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


#: Settings whose production wire name is not the camelCase of the SDK's snake_case name.
_WIRE_NAMES = {"scale_up_threshold": "scaleUpRequestThreshold", "adapter_type": "adapter"}


def on_wire(body: Any, name: str) -> Any:
    """The value of setting `name` in a request body, in either wire shape (snake_case flat,
    or camelCase and nested in `params` / `config` / `serverConfig`); KeyError if absent."""
    if isinstance(body, dict):
        for key in (name, _camel(name), _WIRE_NAMES.get(name, name)):
            if key in body:
                return body[key]
        for value in body.values():
            if isinstance(value, dict):
                try:
                    return on_wire(value, name)
                except KeyError:
                    pass
    raise KeyError(name)
