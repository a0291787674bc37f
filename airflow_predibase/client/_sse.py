"""Server-sent events, parsed line by line with no I/O, into typed events.

Both planes speak a small subset of SSE: `data:` lines (with or without a space after the
colon), a blank line ending each event, `data: [DONE]` ending the OpenAI-compatible
streams, and an in-band `{"error": ..., "error_type": ...}` event when generation fails
after the HTTP status was already 200. Comment lines (`:`) and other fields are ignored.
"""

from __future__ import annotations

import json
from typing import Generic, TypeVar

from pydantic import BaseModel, ValidationError

from airflow_predibase.client.errors import ResponseValidationError, StreamError

E = TypeVar("E", bound=BaseModel)

DONE = "[DONE]"


class EventStream(Generic[E]):
    """Feed it lines; it returns the finished events. `done` turns True at `[DONE]`."""

    def __init__(self, model: type[E], *, method: str, path: str) -> None:
        self._model = model
        self._method = method
        self._path = path
        self._data: list[str] = []
        self.done = False

    def feed(self, line: str) -> list[E]:
        line = line.rstrip("\r\n")
        if not line:
            return self._dispatch()
        field, _, value = line.partition(":")
        if field == "data":
            self._data.append(value[1:] if value.startswith(" ") else value)
        return []

    def end(self) -> list[E]:
        """At end of stream: a last event may lack its blank line."""
        return self._dispatch()

    def _dispatch(self) -> list[E]:
        if not self._data or self.done:
            self._data.clear()
            return []
        data = "\n".join(self._data)
        self._data.clear()
        if data.strip() == DONE:
            self.done = True
            return []
        return [self._parse(data)]

    def _parse(self, data: str) -> E:
        try:
            payload = json.loads(data)
        except ValueError:
            raise self._invalid(f"stream event is not JSON: {data[:200]!r}") from None
        if isinstance(payload, dict) and payload.get("error"):
            error = payload["error"]
            message = error.get("message", str(error)) if isinstance(error, dict) else str(error)
            raise StreamError(
                message,
                error_type=payload.get("error_type"),
                method=self._method,
                path=self._path,
            )
        try:
            return self._model.model_validate(payload)
        except ValidationError as exc:
            name = self._model.__name__
            why = f"stream event is not a {name}: {exc.error_count()} error(s)"
            raise self._invalid(why) from None

    def _invalid(self, message: str) -> ResponseValidationError:
        return ResponseValidationError(message, method=self._method, path=self._path)
