"""The base every wire model shares: tolerant of fields the server adds later, and of both
the seed spec's shapes and production's (see `_wire_shapes`)."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, model_validator

from airflow_predibase.client.models._wire_shapes import WireShape, normalize


class WireModel(BaseModel):
    """A response object: unknown fields are kept, aliases and field names both accepted.

    A model that production sends in another shape sets `wire_shape`; its input is then
    normalized before validation (`uuid` -> `id`, camelCase -> snake_case, nested values).
    """

    model_config = ConfigDict(extra="allow", populate_by_name=True, protected_namespaces=())

    wire_shape: ClassVar[WireShape | None] = None

    @model_validator(mode="before")
    @classmethod
    def _either_shape(cls, data: Any) -> Any:
        if cls.wire_shape is None:
            return data
        return normalize(data, cls.wire_shape, cls.model_fields)


class RequestModel(BaseModel):
    """A request body. `to_body()` is exactly what goes on the wire: aliases, no unset fields."""

    model_config = ConfigDict(extra="allow", populate_by_name=True, protected_namespaces=())

    def to_body(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)
