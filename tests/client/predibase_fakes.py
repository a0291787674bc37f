"""Test doubles at the transport seam: a scripted fake server, a fake clock, and spec examples.

Nothing here patches the client: tests hand it an `httpx.MockTransport` that answers like
the server, and a clock whose `sleep` only moves time forward.
"""

from __future__ import annotations

import asyncio
import inspect
import json
from collections.abc import Callable
from typing import Any

import httpx

from airflow_predibase.client import (
    AsyncPredibaseClient,
    ClientSettings,
    PredibaseClient,
    RetryPolicy,
)

TOKEN = "pb_TOKEN_never_leak_5c1e9d"
SETTINGS = ClientSettings(token=TOKEN, tenant_id="tenant1", dialect="spec")
# No jitter, so waits are exact and sync/async runs are comparable.
EXACT = RetryPolicy(max_attempts=4, initial_backoff=1.0, max_backoff=8.0, jitter=0.0)

Step = Callable[[httpx.Request], httpx.Response]


def reply(
    status: int = 200,
    json_body: Any = None,
    *,
    content: bytes | str | None = None,
    headers: dict[str, str] | None = None,
) -> Step:
    """A step answering with a fresh response each time."""

    def step(request: httpx.Request) -> httpx.Response:
        if json_body is not None:
            return httpx.Response(status, json=json_body, headers=headers)
        return httpx.Response(status, content=content or b"", headers=headers)

    return step


def fail(error: type[httpx.TransportError]) -> Step:
    """A step raising a transport error, as httpx would (e.g. ReadTimeout after sending)."""

    def step(request: httpx.Request) -> httpx.Response:
        raise error(f"simulated {error.__name__}", request=request)

    return step


class Script:
    """A fake server answering requests with its steps, in order, recording each request."""

    def __init__(self, *steps: Step) -> None:
        self.steps = list(steps)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        request.read()
        self.requests.append(request)
        assert self.steps, f"unexpected request {request.method} {request.url}"
        return self.steps.pop(0)(request)

    @property
    def sent(self) -> list[tuple[str, str, bytes]]:
        return [(r.method, str(r.url), r.content) for r in self.requests]


class FakeClock:
    """Monotonic time that only moves when the client sleeps."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    async def asleep(self, seconds: float) -> None:
        self.sleep(seconds)


def sync_client(
    handler: Callable[[httpx.Request], httpx.Response],
    *,
    clock: FakeClock | None = None,
    retry: RetryPolicy | None = EXACT,
    settings: ClientSettings = SETTINGS,
) -> PredibaseClient:
    clock = clock or FakeClock()
    http = httpx.Client(transport=httpx.MockTransport(handler))
    return PredibaseClient(settings, http_client=http, retry=retry, sleep=clock.sleep, clock=clock)


def async_client(
    handler: Callable[[httpx.Request], httpx.Response],
    *,
    clock: FakeClock | None = None,
    retry: RetryPolicy | None = EXACT,
    settings: ClientSettings = SETTINGS,
) -> AsyncPredibaseClient:
    clock = clock or FakeClock()
    http = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    return AsyncPredibaseClient(
        settings, http_client=http, retry=retry, sleep=clock.asleep, clock=clock
    )


async def _settle(value: Any) -> Any:
    if inspect.isawaitable(value):
        return await value
    if hasattr(value, "__aiter__"):
        return [item async for item in value]
    return value


def outcome(call: Callable[[], Any]) -> tuple[str, Any]:
    """("ok", result) or ("error", (class name, message)) for a sync or async client call.

    Iterators are drained, coroutines run, models dumped: two outcomes compare with ==.
    """
    try:
        result = call()
        if inspect.isawaitable(result) or hasattr(result, "__aiter__"):
            result = asyncio.run(_settle(result))
        elif hasattr(result, "__next__"):
            result = list(result)
    except Exception as exc:
        return "error", (type(exc).__name__, str(exc))
    return "ok", _dump(result)


def _dump(value: Any) -> Any:
    if isinstance(value, list):
        return [_dump(item) for item in value]
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json")
    return value


# -- examples built from the project's OpenAPI schemas -------------------------------------


def example(schema: dict[str, Any], spec: dict[str, Any], *, full: bool = True) -> Any:
    """An instance of an OpenAPI schema.

    `full=True` fills every property with a non-null value; `full=False` only the required
    ones, with null wherever the schema allows it: together they exercise both ends of
    what a server may send.
    """
    while "$ref" in schema:
        target: Any = spec
        for part in schema["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        schema = target
    if "allOf" in schema:
        merged: Any = None
        for part in schema["allOf"]:
            value = example(part, spec, full=full)
            merged = {**merged, **value} if isinstance(merged, dict) else value
        return merged
    if "oneOf" in schema or "anyOf" in schema:
        return example((schema.get("oneOf") or schema["anyOf"])[0], spec, full=full)
    if schema.get("nullable") and not full:
        return None
    if "example" in schema:
        return schema["example"]
    if "enum" in schema:
        return next(value for value in schema["enum"] if value is not None)
    kind = schema.get("type", "object")
    if kind == "object":
        required = set(schema.get("required", []))
        found = {
            name: example(prop, spec, full=full)
            for name, prop in schema.get("properties", {}).items()
            if full or name in required
        }
        extra = schema.get("additionalProperties")
        if not found and schema.get("minProperties") and extra is not False:
            # A map (e.g. GRPO secrets, reward functions by name) that must not be empty.
            found = {"key": example(extra if isinstance(extra, dict) else {}, spec, full=full)}
        return found
    if kind == "array":
        return [example(schema.get("items", {}), spec, full=full)]
    if kind == "string":
        return {"uri": "https://files.example.com/object", "date-time": "2025-01-01T00:00:00Z"}.get(
            schema.get("format", ""), "text"
        )
    if kind == "integer":
        return max(int(schema.get("minimum", 1)), 1)
    if kind == "number":
        return min(max(float(schema.get("minimum", 0)) + 0.5, 0.5), schema.get("maximum", 1e9))
    if kind == "boolean":
        return True
    raise AssertionError(f"cannot build an example of {schema}")


def sse(events: list[Any], *, done: bool) -> bytes:
    lines = [f"data: {json.dumps(event)}\n\n" for event in events]
    if done:
        lines.append("data: [DONE]\n\n")
    return "".join(lines).encode()
