"""The one exception the emulator's logic raises, and the bodies it turns into.

Control-plane errors are ``{"error": "<message>"}``. Serving-plane errors add
``error_type`` as the LoRAX router does; for the statuses LoRAX defines, the type follows
from the status, so callers rarely pass it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

#: LoRAX's error types and the statuses they come with (API_NOTES, "Errors").
SERVING_ERROR_TYPES: dict[int, str] = {
    422: "validation",
    424: "generation",
    429: "overloaded",
    500: "incomplete_generation",
    503: "healthcheck",
}


class ApiError(Exception):
    """An HTTP error answer: status, message, optional serving error type and headers."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        error_type: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.error_type = error_type
        self.headers = dict(headers or {})


def error_body(status: int, message: str, *, serving: bool, error_type: str | None = None) -> bytes:
    """The JSON bytes of an error answer on the given plane."""
    body: dict[str, str] = {"error": message}
    if serving:
        kind = error_type or SERVING_ERROR_TYPES.get(status)
        if kind is not None:
            body["error_type"] = kind
    return json.dumps(body, separators=(",", ":")).encode()


def is_serving_path(path: str) -> bool:
    """True for `/{tenant}/deployments/v2/llms/...` paths."""
    parts = path.split("/", 5)
    return len(parts) >= 5 and parts[2:5] == ["deployments", "v2", "llms"]
