"""Deployments: a base model served on GPUs, with LoRA adapters loaded on demand."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator

from airflow_predibase.client.models._base import RequestModel, WireModel
from airflow_predibase.client.models.status import DeploymentStatus

Quantization = Literal["none", "fp8", "bitsandbytes-nf4"]
QUANTIZATIONS: tuple[str, ...] = ("none", "fp8", "bitsandbytes-nf4")

#: Accelerator IDs the platform accepts, with the hardware each one is.
ACCELERATORS: dict[str, str] = {
    "a10_24gb_100": "1x A10G",
    "l4_24gb_100": "1x L4",
    "l40s_48gb_100": "1x L40S",
    "a100_80gb_100": "1x A100",
    "a100_80gb_200": "2x A100",
    "a10_24gb_400": "4x A10G",
    "h100_80gb_pcie_100": "1x H100 PCIe",
    "h100_80gb_sxm_100": "1x H100 SXM",
}
#: The spec's short forms, which mean the single-GPU variants.
ACCELERATOR_ALIASES: dict[str, str] = {"a10_24gb": "a10_24gb_100", "a100_80gb": "a100_80gb_100"}


def normalize_accelerator(value: str) -> str:
    """The canonical accelerator ID, or ValueError naming the valid choices."""
    canonical = ACCELERATOR_ALIASES.get(value, value)
    if canonical not in ACCELERATORS:
        valid = ", ".join([*ACCELERATORS, *ACCELERATOR_ALIASES])
        raise ValueError(f"unknown accelerator {value!r}; valid accelerators: {valid}")
    return canonical


class DeploymentConfig(RequestModel):
    """Settings shared by create and update. Unset fields keep the platform's defaults."""

    accelerator: str | None = Field(default=None, description="GPU type, e.g. a10_24gb_100.")
    min_replicas: int | None = Field(default=None, ge=0, description="0 allows standby.")
    max_replicas: int | None = Field(default=None, ge=1, description="Upper replica bound.")
    cooldown_time: int | None = Field(default=None, ge=0, description="Idle seconds to standby.")
    scale_up_threshold: int | None = Field(default=None, ge=1, description="Queue per replica.")
    quantization: Quantization | None = Field(default=None, description="none, fp8, nf4.")
    max_total_tokens: int | None = Field(default=None, ge=1, description="Context budget.")
    preloaded_adapters: list[str] | None = Field(default=None, description="`repo/N` to preload.")
    prefix_caching: bool | None = Field(default=None, description="Enable prefix caching.")
    speculator: str | None = Field(default=None, description="Speculative decoding adapter.")
    uses_guaranteed_capacity: bool | None = Field(default=None, description="Reserved GPUs.")
    description: str | None = Field(default=None, description="Free text.")

    @field_validator("accelerator")
    @classmethod
    def _known_accelerator(cls, value: str | None) -> str | None:
        return None if value is None else normalize_accelerator(value)


class DeploymentRequest(DeploymentConfig):
    """Body of `POST /deployments`."""

    name: str = Field(description="Deployment name, unique in the tenant.")
    base_model: str = Field(description="Base model to serve; must be listed by /models.")


class DeploymentUpdateRequest(DeploymentConfig):
    """Body of `PUT /deployments/{name}`. The accelerator cannot change this way."""

    base_model: str | None = Field(default=None, description="Must equal the current one.")


class Deployment(WireModel):
    """A deployment as the platform reports it."""

    name: str = Field(description="Deployment name.")
    base_model: str | None = Field(default=None, description="Served base model.")
    accelerator: str | None = Field(default=None, description="GPU type.")
    status: DeploymentStatus = Field(
        default=DeploymentStatus.PENDING, description="See DeploymentStatus."
    )
    min_replicas: int | None = Field(default=None, description="Lower replica bound.")
    max_replicas: int | None = Field(default=None, description="Upper replica bound.")
    cooldown_time: int | None = Field(default=None, description="Idle seconds to standby.")
    scale_up_threshold: int | None = Field(default=None, description="Queue per replica.")
    quantization: str | None = Field(default=None, description="Quantization.")
    max_total_tokens: int | None = Field(default=None, description="Context budget.")
    preloaded_adapters: list[str] | None = Field(default=None, description="Preloaded adapters.")
    prefix_caching: bool | None = Field(default=None, description="Prefix caching on.")
    speculator: str | None = Field(default=None, description="Speculator.")
    uses_guaranteed_capacity: bool | None = Field(default=None, description="Reserved GPUs.")
    description: str | None = Field(default=None, description="Free text.")
    created_at: str | None = Field(default=None, description="Creation time, ISO 8601.")
    updated_at: str | None = Field(default=None, description="Last update, ISO 8601.")

    def differs_from(self, wanted: DeploymentConfig) -> dict[str, tuple[Any, Any]]:
        """The settings `wanted` sets that differ here: {field: (current, wanted)}."""
        diff: dict[str, tuple[Any, Any]] = {}
        for field, value in wanted.model_dump(exclude_none=True).items():
            current = getattr(self, field, None)
            if field == "accelerator" and current is not None:
                current = ACCELERATOR_ALIASES.get(current, current)
            if isinstance(current, list) and isinstance(value, list):
                same = sorted(current) == sorted(value)  # order of adapters does not matter
            else:
                same = current == value
            if not same:
                diff[field] = (current, value)
        return diff
