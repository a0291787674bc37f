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
- ``late_commit``: a create whose answer is lost (`lost_as`: the connection drops, a 5xx
  `status`, or a `timeout`: no answer for `delay` real seconds, then a drop) and whose
  resource becomes visible (GET, lists) only `lag` seconds of the emulator's clock later.
- ``list_lag``: a create answered normally whose resource is missing from list answers for
  `lag` seconds of the emulator's clock (GET by id finds it at once).
- ``foreign``: a 200 carrying another resource: the answer of the same route for the
  resource `other`, or, without `other`, the real answer with its identity changed.
- ``unknown_status``: a 200 whose `status` is `reported_status` (default ``suspended``),
  a value no client knows.
- ``truncated``: the real answer (status and headers) with its body cut after the `keep`
  fraction of its bytes: a 200 whose JSON ends mid-way.

``non_json`` with `status` 200 is a captive portal's or a gateway's HTML page.

Chaos mode draws from a seeded `random.Random`, so a failing run can be replayed.
"""

from __future__ import annotations

import asyncio
import fnmatch
import json
import random
import threading
import uuid
from contextvars import ContextVar
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from airflow_predibase.emulator.auth import is_console_path
from airflow_predibase.emulator.errors import error_body, is_serving_path

FaultKind = Literal[
    "status",
    "non_json",
    "slow",
    "drop",
    "drop_after",
    "stream_error",
    "late_commit",
    "list_lag",
    "foreign",
    "unknown_status",
    "truncated",
]
LostAs = Literal["drop", "status", "timeout"]
ADMIN_PREFIX = "/__emulator__"

#: A day: longer than any client timeout worth testing, short of overflowing a header.
_MAX_RETRY_AFTER = 86_400.0
#: A year of the emulator's clock: far past any deadline, far short of datetime's limits.
MAX_LAG = 366 * 86_400.0

#: What a `late_commit` or `list_lag` rule does to the resources its request creates:
#: (document field, seconds of the emulator's clock). Set by the middleware around one
#: request, read by `Resource.save`: a per-request value, so concurrent requests never mix.
CreateHold = tuple[Literal["_hidden_until", "_unlisted_until"], float]


class FaultRule(BaseModel):
    """One scripted fault. `count` is how many matching requests it hits."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: FaultKind = Field(description="What happens; see the module docstring.")
    method: str = Field(default="*", description="HTTP method, or * for any.")
    path: str = Field(default="*", description="Glob on the path, e.g. /v2/finetuning/jobs/*.")
    count: int = Field(default=1, ge=1, le=1_000_000, description="Requests it applies to.")
    status: int = Field(
        default=503,
        ge=200,
        le=599,
        description="For status (400-599), non_json (200-599), late_commit lost as status (5xx).",
    )
    retry_after: float | None = Field(
        default=None, ge=0, le=_MAX_RETRY_AFTER, description="Retry-After seconds."
    )
    delay: float = Field(
        default=1.0, ge=0, le=600, description="Real seconds: for slow, late_commit timeout."
    )
    message: str | None = Field(default=None, description="Error message to send.")
    after_tokens: int = Field(default=1, ge=0, description="For stream_error.")
    lag: float = Field(
        default=12.0,
        ge=0,
        le=MAX_LAG,
        description="Seconds of the emulator's clock: for late_commit and list_lag.",
    )
    lost_as: LostAs = Field(default="drop", description="How late_commit loses the answer.")
    other: str | None = Field(
        default=None,
        min_length=1,
        description="For foreign: the id or name of the resource whose answer is sent.",
    )
    reported_status: str = Field(
        default="suspended", min_length=1, description="For unknown_status."
    )
    keep: float = Field(
        default=0.5, ge=0, lt=1, description="For truncated: the fraction of the body sent."
    )

    @model_validator(mode="after")
    def _status_fits_kind(self) -> FaultRule:
        if self.kind == "status" and self.status < 400:
            raise ValueError("a status fault answers 400-599")
        if self.kind == "late_commit" and self.lost_as == "status" and self.status < 500:
            raise ValueError("a late_commit lost as status answers 500-599")
        if self.other is not None and "/" in self.other:
            raise ValueError("other is one id or name, without '/'")
        return self

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


_PORTAL = (
    b"<!DOCTYPE html><html><head><title>Sign in</title></head><body>"
    b"<h1>Sign in to continue</h1><p>This network requires you to sign in.</p></body></html>"
)


class _Captured:
    """An answer the app sent, held back so a fault can change it before the client sees it."""

    def __init__(self) -> None:
        self.status = 500
        self.headers: list[tuple[bytes, bytes]] = []
        self.body = b""

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
            self.headers = list(message.get("headers", []))
        elif message["type"] == "http.response.body":
            self.body += message.get("body", b"")

    def json_object(self) -> dict[str, Any] | None:
        """The body as a JSON object (unwrapped from `{"data": {...}}`), if it is one."""
        try:
            body = json.loads(self.body)
        except ValueError:
            return None
        if isinstance(body, dict) and isinstance(body.get("data"), dict) and len(body) == 1:
            body = body["data"]
        return body if isinstance(body, dict) else None

    async def replay(self, send: Send, body: bytes | None = None) -> None:
        body = self.body if body is None else body
        headers = [(k, v) for k, v in self.headers if k.lower() != b"content-length"]
        headers.append((b"content-length", str(len(body)).encode()))
        await send({"type": "http.response.start", "status": self.status, "headers": headers})
        await send({"type": "http.response.body", "body": body})


async def _empty_body() -> Message:
    return {"type": "http.request", "body": b"", "more_body": False}


def _disguised(body: dict[str, Any]) -> dict[str, Any]:
    """The same resource under another identity: what a mixed-up cache would hand out."""
    changed = dict(body)
    for field in ("id", "uuid"):
        if isinstance(changed.get(field), str):
            changed[field] = str(uuid.uuid5(uuid.NAMESPACE_URL, "foreign:" + changed[field]))
    if "id" not in changed and "uuid" not in changed and isinstance(changed.get("name"), str):
        changed["name"] = changed["name"] + "-foreign"
    return changed


class FaultMiddleware:
    """The outermost layer: it must see uvicorn's own `send` to drop connections."""

    def __init__(self, app: ASGIApp, book: FaultBook, holds: ContextVar[CreateHold | None]) -> None:
        self.app = app
        self.book = book
        self.holds = holds

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
        elif rule.kind == "late_commit":
            await self._late_commit(rule, scope, receive, send)
        elif rule.kind == "list_lag":
            await self._held(("_unlisted_until", rule.lag), scope, receive, send)
        elif rule.kind in ("foreign", "unknown_status", "truncated"):
            await self._rewrite(rule, scope, receive, send)
        else:
            await self._answer(rule, scope["path"], send)

    async def _held(self, hold: CreateHold, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the request with `hold` applied to whatever it creates."""
        token = self.holds.set(hold)
        try:
            await self.app(scope, receive, send)
        finally:
            self.holds.reset(token)

    async def _late_commit(
        self, rule: FaultRule, scope: Scope, receive: Receive, send: Send
    ) -> None:
        answer = _Captured()
        await self._held(("_hidden_until", rule.lag), scope, receive, answer.send)
        if rule.lost_as == "status":
            await self._answer(rule, scope["path"], send)
            return
        if rule.lost_as == "timeout":
            await asyncio.sleep(rule.delay)
        await _close_connection(send)

    async def _rewrite(self, rule: FaultRule, scope: Scope, receive: Receive, send: Send) -> None:
        """The app's real answer, changed by the rule when it is a 200 it can change."""
        pristine = dict(scope)  # the router writes its matches into `scope`
        answer = _Captured()
        await self.app(scope, receive, answer.send)
        if answer.status != 200:
            await answer.replay(send)
        elif rule.kind == "truncated":
            await answer.replay(send, answer.body[: int(len(answer.body) * rule.keep)])
        elif rule.kind == "foreign" and rule.other is not None:
            await self._foreign_answer(rule.other, pristine, send)
        else:
            body = answer.json_object()
            if body is None:
                await answer.replay(send)
                return
            if rule.kind == "unknown_status":
                body = {**body, "status": rule.reported_status} if "status" in body else body
            else:
                body = _disguised(body)
            await answer.replay(send, json.dumps(body, separators=(",", ":")).encode())

    async def _foreign_answer(self, other: str, scope: Scope, send: Send) -> None:
        """What the same route answers for resource `other`, sent as the answer to this one."""
        head, _, _ = scope["path"].rpartition("/")
        path = f"{head}/{other}"
        theirs = _Captured()
        foreign_scope = {**scope, "path": path, "raw_path": path.encode(), "query_string": b""}
        await self.app(foreign_scope, _empty_body, theirs.send)
        await theirs.replay(send)

    async def _answer(self, rule: FaultRule, path: str, send: Send) -> None:
        headers = []
        retry_after = rule.retry_after
        if retry_after is None and rule.status in (429, 503):
            retry_after = 1
        if retry_after is not None:
            headers.append((b"retry-after", str(int(retry_after + 0.999)).encode()))
        if rule.kind == "non_json":
            body = _PORTAL if rule.status < 300 else _HTML % (rule.status, rule.status)
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
