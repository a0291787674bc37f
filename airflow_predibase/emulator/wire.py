"""Request bodies in, JSON out: validation through the client's own wire models.

Validating with the models the client sends keeps one definition of each body. Strict
mode refuses what JSON Schema refuses (a string for an integer, say); the platform's
semantic rules (known base model, ...) are checked by the resources afterwards.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from starlette.requests import Request
from starlette.responses import Response

from airflow_predibase.client.models._wire_shapes import snake
from airflow_predibase.client.models.configs import SECRET_FIELDS
from airflow_predibase.emulator.errors import ApiError
from airflow_predibase.emulator.spec import RequestSchemas

M = TypeVar("M", bound=BaseModel)


def json_response(content: Any, status: int = 200) -> Response:
    """Compact JSON, as the platform sends it."""
    return Response(
        json.dumps(content, separators=(",", ":"), ensure_ascii=False).encode(),
        status_code=status,
        media_type="application/json",
    )


async def read_json(request: Request) -> Any:
    """The request body as JSON; a 400 naming the problem if it is not JSON."""
    raw = await request.body()
    if not raw.strip():
        raise ApiError(400, "request body is empty; send a JSON object")
    try:
        return json.loads(raw, parse_constant=_no_constant)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError(400, f"request body is not valid JSON: {exc}") from None
    except RecursionError:
        raise ApiError(400, "request body is nested too deeply") from None


def _no_constant(name: str) -> Any:
    """NaN and Infinity are not JSON (RFC 8259), though Python's parser takes them."""
    raise ValueError(f"{name} is not a JSON value")


def _location(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(part) for part in loc) or "body"


def describe(exc: ValidationError) -> str:
    """'field X: reason; field Y: reason', the first few problems of a validation error."""
    problems = [f"field '{_location(e['loc'])}': {e['msg']}" for e in exc.errors()[:3]]
    more = exc.error_count() - len(problems)
    return "; ".join(problems) + (f" (and {more} more)" if more > 0 else "")


def validate(model: type[M], data: Any) -> M:
    """`data` as `model`, or a 422 that names the offending fields."""
    if not isinstance(data, dict):
        raise ApiError(422, f"request body must be a JSON object, got {type(data).__name__}")
    try:
        return model.model_validate(data, strict=True)
    except ValidationError as exc:
        # An unknown accelerator is not the model's to refuse (the list is open for a
        # client): the resources answer it with a 400 (`spec.require_accelerator`).
        raise ApiError(422, describe(exc)) from None


async def parse_body(
    request: Request, model: type[M], schemas: RequestSchemas, operation_id: str
) -> M:
    """The request body, checked against the OpenAPI schema of `operation_id`, as `model`."""
    data = await read_json(request)
    schemas.check(operation_id, data)
    return validate(model, data)


def require_text(value: str, field: str) -> str:
    """A 422 for an empty or blank string the contract says must have content."""
    if not value.strip():
        raise ApiError(422, f"field '{field}': must not be empty")
    return value


def iso(timestamp: float | None) -> str | None:
    """ISO 8601 in UTC with a Z, or None."""
    if timestamp is None:
        return None
    moment = datetime.fromtimestamp(timestamp, tz=timezone.utc)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def wire(model: type[BaseModel], fields: dict[str, Any]) -> dict[str, Any]:
    """`fields` passed through the client's response model: what goes on the wire.

    Building every answer through the model the client parses catches drift between
    the two at the first request rather than in a user's DAG.
    """
    return model.model_validate(fields).model_dump(mode="json", by_alias=True, exclude_none=True)


#: What a secret's value is shown as (the same as pydantic's `SecretStr`).
SECRET_SHOWN = "**********"


def without_secrets(settings: dict[str, Any]) -> dict[str, Any]:
    """`settings` fit to store and show back: a secret map (GRPO `secrets`) keeps only its
    names, each value masked; any other secret (`hf_token`, `hfToken`) is dropped. The
    emulator keeps no secret value anywhere, so no answer and no state file can leak one."""
    out: dict[str, Any] = {}
    for key, value in settings.items():
        if snake(key) not in SECRET_FIELDS:
            out[key] = value
        elif isinstance(value, dict):
            out[key] = dict.fromkeys(value, SECRET_SHOWN)
    return out
