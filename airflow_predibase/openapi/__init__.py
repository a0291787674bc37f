"""The project's OpenAPI description of Predibase (`predibase.yml`, shipped in the package).

The client's tests and the emulator both check their traffic against it, so it is the one
place where "what Predibase speaks" is written down. Small API:

    load_spec() -> dict
        The parsed document (cached). Do not mutate it.
    operations() -> dict[str, Operation]
        Every operation by operationId. `Operation` is a named tuple
        `(method, path, plane, op)`: "GET", "/finetuning/jobs/{jobId}", "control" or
        "serving" (from `x-plane`), and the operation object itself.
    operation(operation_id) -> Operation
    match_operation(method, path, plane=None) -> (Operation, path_params) | None
        Which operation a concrete plane-relative path is, e.g. ("GET", "/repos/r/version/2")
        -> getAdapterVersion, {"repoName": "r", "versionNumber": "2"}. Literal segments win
        over templates (`/datasets/upload` is not `/datasets/{datasetName}`).
    validator_for(target) -> jsonschema validator
        `target` is a schema name ("Dataset"), a ref ("#/components/schemas/Dataset") or a
        schema dict taken from the spec. OpenAPI 3.0 `nullable` is turned into JSON Schema
        (`type: [T, "null"]`, or `anyOf` with null where there is no `type`), and refs
        resolve against the spec's components. Draft 4 semantics, like OpenAPI 3.0.
    request_validator(operation_id) -> validator | None       (None: no JSON body)
    response_validator(operation_id, status="200") -> validator | None

Use `validator.validate(instance)` to raise, or `validator.iter_errors(instance)` to list.
yaml and jsonschema are imported inside these functions only, so importing this package
costs nothing.
"""

from __future__ import annotations

import functools
import re
from importlib import resources
from typing import Any, NamedTuple

_METHODS = ("get", "put", "post", "delete", "patch", "head", "options")


class Operation(NamedTuple):
    method: str
    path: str
    plane: str
    op: dict[str, Any]


@functools.cache
def load_spec() -> dict[str, Any]:
    import yaml

    text = resources.files(__name__).joinpath("predibase.yml").read_text(encoding="utf-8")
    spec: dict[str, Any] = yaml.safe_load(text)
    return spec


@functools.cache
def operations() -> dict[str, Operation]:
    found: dict[str, Operation] = {}
    for path, item in load_spec()["paths"].items():
        for method in _METHODS:
            if method in item:
                op = item[method]
                plane = op.get("x-plane", "control")
                found[op["operationId"]] = Operation(method.upper(), path, plane, op)
    return found


def operation(operation_id: str) -> Operation:
    try:
        return operations()[operation_id]
    except KeyError:
        raise KeyError(f"no operation {operation_id!r} in predibase.yml") from None


@functools.cache
def _routes() -> list[tuple[re.Pattern[str], Operation]]:
    routes = []
    for found in operations().values():
        pattern = re.sub(r"\\{(\w+)\\}", r"(?P<\1>[^/]+)", re.escape(found.path))
        routes.append((re.compile(pattern + "$"), found))
    # Fewer parameters first, so literal segments win over templates.
    routes.sort(key=lambda route: route[1].path.count("{"))
    return routes


def match_operation(
    method: str, path: str, plane: str | None = None
) -> tuple[Operation, dict[str, str]] | None:
    for pattern, found in _routes():
        if found.method != method.upper() or (plane is not None and found.plane != plane):
            continue
        hit = pattern.match(path or "/")
        if hit:
            return found, hit.groupdict()
    return None


def _to_json_schema(node: Any) -> Any:
    """OpenAPI 3.0 schema -> JSON Schema: `nullable` is the only keyword that needs it."""
    if isinstance(node, list):
        return [_to_json_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: _to_json_schema(value) for key, value in node.items() if key != "nullable"}
    if not node.get("nullable"):
        return out
    if "type" in out:
        out["type"] = [out["type"], "null"]
        if "enum" in out and None not in out["enum"]:
            out["enum"] = [*out["enum"], None]
        return out
    return {"anyOf": [out, {"type": "null"}]}


@functools.cache
def _components() -> dict[str, Any]:
    converted: dict[str, Any] = _to_json_schema(load_spec().get("components", {}))
    return converted


def _resolve(node: dict[str, Any]) -> dict[str, Any]:
    """Follow `$ref`s into components (responses, request bodies) until a real object."""
    while "$ref" in node:
        target: Any = load_spec()
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        node = target
    return node


def validator_for(target: str | dict[str, Any]) -> Any:
    """A Draft 4 jsonschema validator for a schema of the spec (see the module docstring)."""
    from jsonschema import Draft4Validator  # type: ignore[import-untyped]

    if isinstance(target, str):
        name = target.rsplit("/", 1)[-1]
        if name not in _components().get("schemas", {}):
            raise KeyError(f"no schema {name!r} in predibase.yml")
        schema: Any = {"$ref": f"#/components/schemas/{name}"}
    else:
        schema = _to_json_schema(target)
    # `allOf` keeps the target's own keywords next to the components its refs point into.
    return Draft4Validator({"allOf": [schema], "components": _components()})


def _json_schema(content_holder: dict[str, Any]) -> dict[str, Any] | None:
    content = _resolve(content_holder).get("content", {})
    schema: dict[str, Any] | None = content.get("application/json", {}).get("schema")
    return schema


def request_validator(operation_id: str) -> Any:
    body = operation(operation_id).op.get("requestBody")
    schema = _json_schema(body) if body else None
    return None if schema is None else validator_for(schema)


def response_validator(operation_id: str, status: str = "200") -> Any:
    responses = operation(operation_id).op.get("responses", {})
    if status not in responses:
        return None
    schema = _json_schema(responses[status])
    return None if schema is None else validator_for(schema)
