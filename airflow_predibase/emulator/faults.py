"""Scripted faults and seeded chaos, applied to real HTTP so retries are tested end to end.

A rule matches requests by method and path glob and applies to the next `count` of them:

- ``status``: answer `status` (429, 500, 502, 503, ...) with a JSON error in the plane's
  shape; a 429 or 503 carries ``Retry-After`` (`retry_after`, default 1 s).
- ``non_json``: answer `status` with an HTML body, as a gateway does.
- ``slow``: wait `delay` real seconds, then answer normally (client timeouts).
- ``drop``: close the connection without answering.
- ``drop_after``: handle the request (the job is created!) and then close the connection
  without sending the answer: the unknown-outcome create a client must not blindly retry.
- ``stream_error``: a streaming route sends `after_tokens` tokens, then an in-band error.

Chaos mode draws from a seeded `random.Random`, so a failing run can be replayed.
"""

from __future__ import annotations

import asyncio
import fnmatch
import random
import threading
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from airflow_predibase.emulator.auth import is_console_path
from airflow_predibase.emulator.errors import error_body, is_serving_path

FaultKind = Literal["status", "non_json", "slow", "drop", "drop_after", "stream_error"]
ADMIN_PREFIX = "/__emulator__"


class FaultRule(BaseModel):
    """One scripted fault. `count` is how many matching requests it hits."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: FaultKind = Field(description="What happens; see the module docstring.")
    method: str = Field(default="*", description="HTTP method, or * for any.")
    path: str = Field(default="*", description="Glob on the path, e.g. /v2/finetuning/jobs/*.")
    count: int = Field(default=1, ge=1, le=1_000_000, description="Requests it applies to.")
    status: int = Field(default=503, ge=400, le=599, description="For status and non_json.")
    retry_after: float | None = Field(default=None, ge=0, description="Retry-After seconds.")
    delay: float = Field(default=1.0, ge=0, le=600, description="For slow.")
    message: str | None = Field(default=None, description="Error message to send.")
    after_tokens: int = Field(default=1, ge=0, description="For stream_error.")

    def matches(self, method: str, path: str) -> bool:
        return (self.method == "*" or self.method.upper() == method) and fnmatch.fnmatchcase(
            path, self.path
        )


#: What chaos mode can pick from, as the shorthand a user writes.
CHAOS_KINDS: dict[str, dict[str, Any]] = {
    "429": {"kind": "status", "status": 429},
    "500": {"kind": "status", "status": 500},
    "502": {"kind": "status", "status": 502},
    "503": {"kind": "status", "status": 503},
    "504": {"kind": "status", "status": 504},
    "non_json": {"kind": "non_json", "status": 502},
    "slow": {"kind": "slow", "delay": 0.5},
    "drop": {"kind": "drop"},
    "drop_after": {"kind": "drop_after"},
}


ChaosKind = Literal["429", "500", "502", "503", "504", "non_json", "slow", "drop"]
DEFAULT_CHAOS: tuple[ChaosKind, ...] = ("429", "500", "502", "503", "drop")


class ChaosConfig(BaseModel):
    """Random failures: each matching request fails with `probability`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    probability: float = Field(ge=0, le=1, description="Chance that a request fails.")
    seed: int = Field(default=0, description="Seed of the generator; same seed, same faults.")
    kinds: list[ChaosKind] = Field(
        default_factory=lambda: list(DEFAULT_CHAOS),
        min_length=1,
        description="Faults to draw from (drop_after is left out: it duplicates creates).",
    )
    method: str = Field(default="*", description="HTTP method, or * for any.")
    path: str = Field(default="*", description="Glob on the path.")


class FaultBook:
    """The scripted rules and the chaos settings of one emulator instance."""

    def __init__(self) -> None:
        self._rules: list[tuple[FaultRule, list[int]]] = []
        self._chaos: ChaosConfig | None = None
        self._random = random.Random(0)
        self._lock = threading.Lock()

    def add(self, rule: FaultRule) -> None:
        with self._lock:
            self._rules.append((rule, [rule.count]))

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()
            self._chaos = None

    def set_chaos(self, chaos: ChaosConfig | None) -> None:
        with self._lock:
            self._chaos = chaos
            self._random = random.Random(chaos.seed if chaos else 0)

    def describe(self) -> dict[str, Any]:
        """Rules with what is left of them, and the chaos settings."""
        with self._lock:
            rules = [{**rule.model_dump(), "remaining": left[0]} for rule, left in self._rules]
            chaos = None if self._chaos is None else self._chaos.model_dump()
        return {"rules": rules, "chaos": chaos}

    def _take(self, method: str, path: str, *, streaming: bool) -> FaultRule | None:
        with self._lock:
            for index, (rule, left) in enumerate(self._rules):
                if (rule.kind == "stream_error") != streaming or not rule.matches(method, path):
                    continue
                left[0] -= 1
                if left[0] <= 0:
                    del self._rules[index]
                return rule
            chaos = self._chaos
            if streaming or chaos is None or not fnmatch.fnmatchcase(path, chaos.path):
                return None
            if chaos.method != "*" and chaos.method.upper() != method:
                return None
            if self._random.random() >= chaos.probability:
                return None
            return FaultRule.model_validate(CHAOS_KINDS[self._random.choice(chaos.kinds)])

    def take(self, method: str, path: str) -> FaultRule | None:
        """The fault for this request, if any (consumes one use of a rule)."""
        if not self._rules and self._chaos is None:
            return None
        return self._take(method, path, streaming=False)

    def take_stream_error(self, method: str, path: str) -> FaultRule | None:
        """A `stream_error` rule for this streaming request, if any."""
        if not self._rules:
            return None
        return self._take(method, path, streaming=True)


_HTML = b"<html><head><title>%d</title></head><body><h1>%d Gateway Error</h1></body></html>"


async def _close_connection(send: Send) -> None:
    """Close the client's TCP connection without an HTTP answer.

    uvicorn's `send` is a bound method of its per-request cycle, which holds the
    transport. There is no ASGI message for "hang up", and raising instead would make
    uvicorn answer 500, which is exactly what this fault must not do.
    """
    cycle = getattr(send, "__self__", None)
    transport = getattr(cycle, "transport", None)
    if transport is None:
        # In-process ASGI (httpx.ASGITransport): there is no socket, so fail loudly.
        raise ConnectionResetError("emulator dropped the connection (fault injection)")
    transport.close()
    # Let uvicorn see the disconnect before the app returns, or it answers 500 itself.
    for _ in range(20):
        if getattr(cycle, "disconnected", True):
            break
        await asyncio.sleep(0)


class FaultMiddleware:
    """The outermost layer: it must see uvicorn's own `send` to drop connections."""

    def __init__(self, app: ASGIApp, book: FaultBook) -> None:
        self.app = app
        self.book = book

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # Never the control API, nor the demo console: a chaos run must stay watchable.
        path = scope.get("path", "")
        if scope["type"] != "http" or path.startswith(ADMIN_PREFIX) or is_console_path(path):
            await self.app(scope, receive, send)
            return
        rule = self.book.take(scope["method"], scope["path"])
        if rule is None:
            await self.app(scope, receive, send)
            return
        if rule.kind == "slow":
            await asyncio.sleep(rule.delay)
            await self.app(scope, receive, send)
        elif rule.kind == "drop":
            await _close_connection(send)
        elif rule.kind == "drop_after":

            async def swallow(message: Message) -> None:
                """The work is done; the answer is lost on the way back."""

            await self.app(scope, receive, swallow)
            await _close_connection(send)
        else:
            await self._answer(rule, scope["path"], send)

    async def _answer(self, rule: FaultRule, path: str, send: Send) -> None:
        headers = []
        retry_after = rule.retry_after
        if retry_after is None and rule.status in (429, 503):
            retry_after = 1
        if retry_after is not None:
            headers.append((b"retry-after", str(int(retry_after + 0.999)).encode()))
        if rule.kind == "non_json":
            body = _HTML % (rule.status, rule.status)
            headers.append((b"content-type", b"text/html; charset=utf-8"))
        else:
            message = rule.message or f"emulated fault: HTTP {rule.status}"
            if rule.status == 429 and rule.message is None:
                message = "Model is overloaded" if is_serving_path(path) else "rate limit exceeded"
            body = error_body(rule.status, message, serving=is_serving_path(path))
            headers.append((b"content-type", b"application/json"))
        headers.append((b"content-length", str(len(body)).encode()))
        await send({"type": "http.response.start", "status": rule.status, "headers": headers})
        await send({"type": "http.response.body", "body": body})
