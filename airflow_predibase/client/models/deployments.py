"""Deployments: a base model served on GPUs, with LoRA adapters loaded on demand."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, ClassVar

from pydantic import ConfigDict, Field, field_validator

from airflow_predibase.client.models._base import RequestModel, WireModel
from airflow_predibase.client.models._wire_shapes import WireShape
from airflow_predibase.client.models.configs import QUANTIZATIONS as QUANTIZATIONS
from airflow_predibase.client.models.configs import (
    Backend,
    Quantization,
    SecretText,
    ServingComputeSpec,
)
from airflow_predibase.client.models.status import DeploymentStatus

#: Accelerator IDs known when this provider was released, with the hardware each one is.
#: Documentation only: the platform decides what it offers, and an ID not listed here is
#: sent as given (the server answers an unknown one with the valid IDs).
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


def canonical_accelerator(value: str) -> str:
    """`value` with the spec's short forms expanded; any other ID is returned as given."""
    return ACCELERATOR_ALIASES.get(value, value)


def normalize_accelerator(value: str, known: Mapping[str, str] = ACCELERATORS) -> str:
    """The canonical ID of an accelerator in `known` (default: `ACCELERATORS`), or
    ValueError naming them.

    What a server with that hardware answers; the request models do not use it
    (accelerators are not a closed list for a client).
    """
    canonical = canonical_accelerator(value)
    if canonical not in known:
        valid = ", ".join([*known, *ACCELERATOR_ALIASES])
        raise ValueError(f"unknown accelerator {value!r}; valid accelerators: {valid}")
    return canonical


class DeploymentConfig(RequestModel):
    """Settings shared by create and update, under the SDK's snake_case names (its
    `UpdateDeploymentConfig`, plus `accelerator`, `quantization` and `compute_spec` from its
    `DeploymentConfig`). Unset fields keep the platform's defaults."""

    model_config = ConfigDict(allow_inf_nan=False)

    accelerator: str | None = Field(
        default=None,
        min_length=1,
        description="GPU type, e.g. a10_24gb_100 (open: the server lists the valid IDs).",
    )
    min_replicas: int | None = Field(default=None, ge=0, description="0 allows standby.")
    max_replicas: int | None = Field(default=None, ge=1, description="Upper replica bound.")
    cooldown_time: int | None = Field(default=None, ge=0, description="Idle seconds to standby.")
    scale_up_threshold: int | None = Field(
        default=None,
        ge=1,
        description="Queue per replica (the SDK's wire name: scaleUpRequestThreshold).",
    )
    quantization: Quantization | None = Field(default=None, description="none, fp8, nf4.")
    max_total_tokens: int | None = Field(default=None, ge=1, description="Context budget.")
    max_num_batched_tokens: int | None = Field(
        default=None, ge=1, description="Tokens in one forward batch."
    )
    preloaded_adapters: list[str] | None = Field(default=None, description="`repo/N` to preload.")
    prefix_caching: bool | None = Field(default=None, description="Enable prefix caching.")
    chunked_prefill: bool | None = Field(default=None, description="Enable chunked prefill.")
    speculator: str | None = Field(default=None, description="Speculative decoding adapter.")
    speculation_disable_by_batch_size: int | None = Field(
        default=None, ge=1, description="Stop speculating from this batch size on."
    )
    uses_guaranteed_capacity: bool | None = Field(default=None, description="Reserved GPUs.")
    custom_args: list[Annotated[str, Field(min_length=1)]] | None = Field(
        default=None, description="Extra LoRAX launcher arguments, e.g. ['--max-batch-size', '8']."
    )
    hf_token: SecretText | None = Field(
        default=None, description="Hugging Face token for gated or private base models."
    )
    lorax_image_tag: str | None = Field(default=None, min_length=1, description="LoRAX image tag.")
    request_logging_enabled: bool | None = Field(default=None, description="Log requests.")
    direct_ingress: bool | None = Field(default=None, description="Serve on a direct ingress.")
    backend: Backend | None = Field(default=None, description="Serving backend: v1, v2, v3.")
    disable_adapters: bool | None = Field(default=None, description="Serve the base model only.")
    merge_adapter: bool | None = Field(default=None, description="Merge the adapter into it.")
    cache_model: bool | None = Field(default=None, description="Cache the model weights.")
    compute_spec: ServingComputeSpec | None = Field(
        default=None, description="Serving hardware as a SKU (cannot change in place)."
    )
    description: str | None = Field(default=None, description="Free text.")

    @field_validator("accelerator")
    @classmethod
    def _canonical_accelerator(cls, value: str | None) -> str | None:
        return None if value is None else canonical_accelerator(value)


class DeploymentRequest(DeploymentConfig):
    """Body of `POST /deployments`."""

    name: str = Field(description="Deployment name, unique in the tenant.")
    base_model: str = Field(description="Base model to serve; must be listed by /models.")


class DeploymentUpdateRequest(DeploymentConfig):
    """Body of `PUT /deployments/{name}` (the SDK's `UpdateDeploymentConfig`). The
    accelerator and compute spec cannot change this way."""

    base_model: str | None = Field(default=None, description="Must equal the current one.")


class Deployment(WireModel):
    """A deployment as the platform reports it (seed shape, or production's: `uuid`,
    `model.name`, `accelerator.id`, `currentReplicas`, settings nested in a camelCase
    `config`)."""

    wire_shape: ClassVar[WireShape] = WireShape(
        renames={"scale_up_request_threshold": "scale_up_threshold"},
        paths={"accelerator": ("accelerator", "id"), "base_model": ("model", "name")},
        flatten=("config",),
    )

    name: str = Field(description="Deployment name.")
    id: str | None = Field(default=None, description="Server-side identifier (`uuid`).")
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
    current_replicas: int | None = Field(default=None, description="Replicas running now.")

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
