"""Base models the platform can fine-tune and serve."""

from __future__ import annotations

from pydantic import Field

from airflow_predibase.client.models._base import WireModel


class BaseModelInfo(WireModel):
    """One entry of `GET /models`."""

    name: str = Field(description="Base model name, used as `base_model` everywhere.")
    description: str | None = Field(default=None, description="Free text.")
    context_window: int | None = Field(default=None, description="Maximum context tokens.")
    supports_finetuning: bool | None = Field(default=None, description="Can be fine-tuned.")
