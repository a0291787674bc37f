"""How the seed spec's shapes and production's shapes become one input for a wire model.

Production Predibase (as the official SDK reads it) names things differently from the seed
spec: `uuid` instead of `id`, camelCase keys (`baseModel`, `targetRepoName`, `lastError`),
some values nested (`accelerator.id`, `model.name`, `finetuningJob.uuid`), settings kept in
a sub-object (`params` of a job, `config` of a deployment) and single objects wrapped in
`{"data": {...}}`. `normalize` turns any of these into the snake_case, flat dict the models
declare, once, before validation. It never overwrites a key the answer already has in the
seed's shape, so a seed-shaped answer passes through unchanged.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

_CAMEL_BOUNDARY = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


def snake(key: str) -> str:
    """`targetRepoName` -> `target_repo_name`; snake_case keys are returned unchanged."""
    return _CAMEL_BOUNDARY.sub("_", key).lower() if key[:1].islower() else key


def camel(key: str) -> str:
    """`min_replicas` -> `minReplicas` (the SDK's `camel_case_from_snake_case`)."""
    head, *rest = key.split("_")
    return head + "".join(part.title() for part in rest)


@dataclass(frozen=True)
class WireShape:
    """What one model accepts beyond its own field names.

    Applied in this order, each only where the target key is still missing:
    `unwrap` the single object from `{"data": {...}}`; snake_case every top-level key;
    `renames` (snake_case source key -> field); `flatten` (sub-objects whose snake_cased
    keys fill missing top-level keys); `paths` (field -> (outer, inner): the value inside a
    nested object, also used when the field itself arrived as that object, e.g.
    `accelerator: {"id": ...}`); `values` (production's spelling of an enum value); and
    `uuid` -> `id` when the model has an `id` field.
    """

    renames: Mapping[str, str] = field(default_factory=dict)
    paths: Mapping[str, tuple[str, str]] = field(default_factory=dict)
    flatten: tuple[str, ...] = ()
    values: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    """field -> {production's value: ours}, e.g. an adapter version `completed` is `ready`."""


def _unwrap(data: Any) -> Any:
    if isinstance(data, dict) and data.keys() == {"data"} and isinstance(data["data"], dict):
        return data["data"]
    return data


def normalize(data: Any, shape: WireShape, fields: Mapping[str, Any]) -> Any:
    """`data` in the model's own names (see `WireShape`); anything but a dict is returned."""
    data = _unwrap(data)
    if not isinstance(data, dict):
        return data
    out: dict[str, Any] = {}
    for key, value in data.items():
        out.setdefault(snake(key) if isinstance(key, str) else key, value)
    for source, target in shape.renames.items():
        if source in out and out.get(target) is None:
            out[target] = out[source]
    for outer in shape.flatten:
        nested = out.get(outer)
        if isinstance(nested, dict):
            for key, value in nested.items():
                name = shape.renames.get(snake(key), snake(key))
                if out.get(name) is None and value is not None:
                    out[name] = value
    for target, (outer, inner) in shape.paths.items():
        current = out.get(target)
        if isinstance(current, dict):
            out[target] = _inner(current, inner)
        elif current is None and isinstance(out.get(outer), dict):
            found = _inner(out[outer], inner)
            if found is not None:
                out[target] = found
    for target, mapping in shape.values.items():
        value = out.get(target)
        if isinstance(value, str) and value.lower() in mapping:
            out[target] = mapping[value.lower()]
    if "id" in fields and out.get("id") is None and out.get("uuid") is not None:
        out["id"] = out["uuid"]
    return out


def _inner(obj: dict[str, Any], key: str) -> Any:
    if key in obj:
        return obj[key]
    return next((v for k, v in obj.items() if isinstance(k, str) and snake(k) == key), None)
