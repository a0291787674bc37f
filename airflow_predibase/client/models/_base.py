"""The base every wire model shares: tolerant of fields the server adds later."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict


class WireModel(BaseModel):
    """A response object: unknown fields are kept, aliases and field names both accepted."""

    model_config = ConfigDict(extra="allow", populate_by_name=True, protected_namespaces=())


class RequestModel(BaseModel):
    """A request body. `to_body()` is exactly what goes on the wire: aliases, no unset fields."""

    model_config = ConfigDict(extra="allow", populate_by_name=True, protected_namespaces=())

    def to_body(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)
