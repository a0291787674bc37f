"""Batch inference: score a dataset of OpenAI-batch-format rows server side."""

from __future__ import annotations

from typing import Annotated, Any, ClassVar

from pydantic import ConfigDict, Field

from airflow_predibase.client.models._base import RequestModel, WireModel
from airflow_predibase.client.models._wire_shapes import WireShape
from airflow_predibase.client.models.configs import Backend, Quantization, SecretText
from airflow_predibase.client.models.status import BatchInferenceJobStatus


class BatchInferenceJobRequest(RequestModel):
    """Body of `POST /batch-inference/jobs`.

    `SERVER_CONFIG_FIELDS` (the SDK's beta `BatchInferenceServerConfig`, snake_case) sit
    flat here; on the production wire they form `serverConfig`.
    """

    model_config = ConfigDict(allow_inf_nan=False)

    #: The fields of the job's server configuration.
    SERVER_CONFIG_FIELDS: ClassVar[frozenset[str]] = frozenset(
        {"base_model", "custom_args", "hf_token", "lorax_image_tag", "quantization", "backend"}
    )

    base_model: str = Field(description="Base model; adapters are chosen per row.")
    dataset: str = Field(description="Connected dataset of BatchInputRow rows.")
    output: str | None = Field(default=None, description="Where the platform writes results.")
    custom_args: list[Annotated[str, Field(min_length=1)]] | None = Field(
        default=None, description="Extra LoRAX launcher arguments."
    )
    hf_token: SecretText | None = Field(
        default=None, description="Hugging Face token for gated or private base models."
    )
    lorax_image_tag: str | None = Field(default=None, min_length=1, description="LoRAX image tag.")
    quantization: Quantization | None = Field(default=None, description="none, fp8, nf4.")
    backend: Backend | None = Field(default=None, description="Serving backend: v1, v2, v3.")
    description: str | None = Field(
        default=None, description="Free text. The provider puts its idempotency marker here."
    )


class BatchInferenceJob(WireModel):
    """A batch inference job as the platform reports it (seed shape, or production's: `uuid`,
    `resultPath`, the request echoed in `originalRequest` with its `serverConfig`)."""

    wire_shape: ClassVar[WireShape] = WireShape(
        paths={"base_model": ("server_config", "base_model")},
        flatten=("original_request",),
    )

    id: str = Field(description="Job ID (production's `uuid`).")
    status: BatchInferenceJobStatus = Field(
        default=BatchInferenceJobStatus.QUEUED, description="See BatchInferenceJobStatus."
    )
    base_model: str | None = Field(default=None, description="Base model.")
    dataset: str | None = Field(default=None, description="Input dataset.")
    output: str | None = Field(default=None, description="Output location.")
    description: str | None = Field(default=None, description="As given at creation.")
    created_at: str | None = Field(default=None, description="Creation time, ISO 8601.")
    started_at: str | None = Field(default=None, description="Start time, ISO 8601.")
    completed_at: str | None = Field(default=None, description="End time, ISO 8601.")
    error: str | None = Field(default=None, description="Why the job failed, if it did.")
    total_rows: int | None = Field(default=None, description="Input rows.")
    completed_rows: int | None = Field(default=None, description="Rows answered.")
    failed_rows: int | None = Field(default=None, description="Rows that got an error.")
    result_path: str | None = Field(
        default=None, description="Where production wrote the results (`resultPath`)."
    )


class BatchInferenceResults(WireModel):
    """Reply of `GET /batch-inference/jobs/{id}/results`: a JSONL file to download."""

    url: str = Field(description="Where the JSONL results can be fetched (no auth header).")


class BatchInputRow(WireModel):
    """One input row, OpenAI batch format. `body.model` is `""` or an adapter `repo/N`."""

    custom_id: str = Field(description="Caller's key; results are matched on it.")
    method: str = Field(default="POST", description="Always POST.")
    url: str = Field(default="/v1/chat/completions", description="The serving route.")
    body: dict[str, Any] = Field(description="A chat completion request.")


class BatchResultResponse(WireModel):
    """The HTTP answer for one row."""

    status_code: int = Field(description="HTTP status of the row's request.")
    request_id: str | None = Field(default=None, description="Server request ID.")
    body: dict[str, Any] = Field(default_factory=dict, description="Chat completion response.")


class BatchResultError(WireModel):
    """Why a row has no response."""

    code: str | None = Field(default=None, description="Error code.")
    message: str | None = Field(default=None, description="Error message.")


class BatchOutputRow(WireModel):
    """One output row. Rows come back in any order: match them on `custom_id`."""

    id: str | None = Field(default=None, description="Result row ID.")
    custom_id: str = Field(description="The input row's key.")
    response: BatchResultResponse | None = Field(default=None, description="The answer.")
    error: BatchResultError | None = Field(default=None, description="Or the error.")

    @property
    def text(self) -> str | None:
        """The first choice's message content, if the row succeeded."""
        if self.response is None:
            return None
        choices = self.response.body.get("choices") or []
        if not choices:
            return None
        content = (choices[0].get("message") or {}).get("content")
        return content if isinstance(content, str) else None
