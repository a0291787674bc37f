"""An OpenAPI 3.1 description of the control API (`/__emulator__`), built from its models.

Built from the same pydantic models the routes validate with, so it cannot drift from them.
The emulator's no-5xx test fuzzes the control API with it; it also tells a reader every
body the routes take.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from airflow_predibase.emulator.faults import ADMIN_PREFIX, ChaosConfig, FaultRule
from airflow_predibase.emulator.routes_admin import (
    ClockSkip,
    FailNext,
    ForceState,
    Pagination,
    ProfileChange,
    RateLimitChange,
)

_BODIES: dict[str, type[BaseModel]] = {
    "FaultRule": FaultRule,
    "ChaosConfig": ChaosConfig,
    "ClockSkip": ClockSkip,
    "FailNext": FailNext,
    "ForceState": ForceState,
    "Pagination": Pagination,
    "ProfileChange": ProfileChange,
    "RateLimitChange": RateLimitChange,
}

#: (method, path, body schema name or None, summary)
_ROUTES: list[tuple[str, str, str | None, str]] = [
    ("get", "/health", None, "Liveness; no token needed."),
    ("get", "/state", None, "Every resource as GET shows it, with counts and settings."),
    ("post", "/reset", None, "Forget everything; start profile; clock back to its start."),
    ("get", "/profile", None, "The timing profile."),
    ("put", "/profile", "ProfileChange", "Change the timing profile."),
    ("get", "/faults", None, "Scripted fault rules and chaos settings."),
    ("post", "/faults", "FaultRule", "Script a fault."),
    ("delete", "/faults", None, "Clear the rules and chaos."),
    ("put", "/chaos", "ChaosConfig", "Seeded random failures."),
    ("delete", "/chaos", None, "Stop chaos."),
    ("post", "/clock/advance", "ClockSkip", "Skip the clock ahead."),
    ("get", "/pagination", None, "The list page size."),
    ("put", "/pagination", "Pagination", "Serve lists in pages of at most page_size items."),
    ("post", "/fail-next", "FailNext", "The next resources of a kind end failed."),
    ("get", "/rate-limit", None, "The per-tenant rate limit and its counts (allowed, limited)."),
    ("put", "/rate-limit", "RateLimitChange", "Set the per-tenant rate limit; counts restart."),
    ("post", "/resources/{kind}/{key}/advance", None, "Move a resource one state on."),
    ("post", "/resources/{kind}/{key}/force", "ForceState", "Put a resource in a status."),
]


def _operation(body: str | None, summary: str, path: str) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "summary": summary,
        "responses": {"200": {"description": "OK"}, "default": {"description": "An error."}},
    }
    if body is not None:
        schema = {"$ref": f"#/components/schemas/{body}"}
        operation["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": schema}},
        }
    names = [part[1:-1] for part in path.split("/") if part.startswith("{")]
    if names:
        operation["parameters"] = [
            {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
            for name in names
        ]
    return operation


def admin_openapi() -> dict[str, Any]:
    """The control API as an OpenAPI 3.1 document (paths under `/__emulator__`)."""
    schemas: dict[str, Any] = {}
    for name, model in _BODIES.items():
        schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
        schemas.update(schema.pop("$defs", {}))
        schemas[name] = schema
    paths: dict[str, dict[str, Any]] = {}
    for method, path, body, summary in _ROUTES:
        paths.setdefault(ADMIN_PREFIX + path, {})[method] = _operation(body, summary, path)
    return {
        "openapi": "3.1.0",
        "info": {"title": "Predibase emulator control API", "version": "1"},
        "components": {
            "schemas": schemas,
            "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"bearerAuth": []}],
        "paths": paths,
    }
