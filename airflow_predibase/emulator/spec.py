"""Request bodies checked against the project's OpenAPI description (`openapi/predibase.yml`).

The description is the contract both the client and the emulator answer to; checking
bodies against it catches what the client's lenient models let through (an empty prompt,
a `stream` that is not a boolean, a LoRA rank the platform does not offer). The
validators come from `airflow_predibase.openapi`, are built on first use and kept per
emulator instance. Without jsonschema or PyYAML (both come with Airflow) the check is
skipped and the models alone validate.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from airflow_predibase.client.models import normalize_accelerator
from airflow_predibase.client.models.configs import SECRET_FIELDS
from airflow_predibase.emulator.errors import ApiError


def _where(path: Any) -> str:
    return ".".join(str(part) for part in path) or "body"


def require_accelerator(value: str, field: str, known: Mapping[str, str]) -> str:
    """The canonical ID of accelerator (or SKU) `value` in the catalogue `known`, or the
    platform's 400 that names `field` and lists the valid IDs. The one check every
    dialect's deployments go through."""
    try:
        return normalize_accelerator(value, known)
    except ValueError as error:
        raise ApiError(400, f"field '{field}': {error}") from None


def _problem(error: Any) -> str:
    """'field X: reason', without the value when X is a secret (a schema message quotes it)."""
    where = _where(error.absolute_path)
    if any(str(part) in SECRET_FIELDS for part in error.absolute_path):
        return f"field '{where}': invalid (a secret: its value is not shown)"
    return f"field '{where}': {error.message}"


class RequestSchemas:
    """Per-operation request validators, built lazily."""

    def __init__(self, accelerators: Mapping[str, str]) -> None:
        self._accelerators = accelerators
        self._validators: dict[str, Any] = {}
        self._available: bool | None = None

    def _validator(self, operation_id: str) -> Any:
        if self._available is False:
            return None
        if operation_id not in self._validators:
            try:
                from airflow_predibase.openapi import request_validator
            except ImportError:
                self._available = False
                return None
            try:
                self._validators[operation_id] = request_validator(operation_id)
            except ImportError:  # jsonschema or yaml missing: models only
                self._available = False
                return None
        return self._validators[operation_id]

    def check(self, operation_id: str, body: Any) -> None:
        """A 422 naming the first problems, or 400 for an unknown accelerator."""
        validator = self._validator(operation_id)
        if validator is None:
            return
        errors = sorted(validator.iter_errors(body), key=lambda e: list(map(str, e.path)))
        if not errors:
            return
        for error in errors:
            accelerator = error.instance
            if list(error.absolute_path) == ["accelerator"] and isinstance(accelerator, str):
                require_accelerator(accelerator, "accelerator", self._accelerators)
        problems = [_problem(e) for e in errors[:3]]
        more = len(errors) - len(problems)
        raise ApiError(422, "; ".join(problems) + (f" (and {more} more)" if more else ""))
