"""Datasets: connected from a source, or uploaded through the four-step flow."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from airflow_predibase.client.models._base import RequestModel, WireModel
from airflow_predibase.client.models._wire_shapes import WireShape
from airflow_predibase.client.models.status import DatasetStatus


class DatasetRequest(RequestModel):
    """Body of `POST /datasets`: connect a dataset from a source the platform can read."""

    name: str = Field(description="Dataset name, unique in the tenant.")
    source: str | None = Field(default=None, description="Where the platform reads the data.")
    description: str | None = Field(default=None, description="Free text, shown in the console.")


class Dataset(WireModel):
    """A dataset as the platform reports it (seed shape, or production's: `uuid`,
    `lastError`, `connection: {type, name}`)."""

    wire_shape: ClassVar[WireShape] = WireShape(
        paths={
            "connection_type": ("connection", "type"),
            "connection_name": ("connection", "name"),
        },
    )

    name: str = Field(description="Dataset name.")
    id: str | None = Field(default=None, description="Server-side identifier.")
    status: DatasetStatus = Field(
        default=DatasetStatus.CONNECTING, description="connecting, connected or errored."
    )
    source: str | None = Field(default=None, description="Where the data came from.")
    description: str | None = Field(default=None, description="Free text set at creation.")
    last_error: str | None = Field(
        default=None, alias="lastError", description="Why the dataset errored, if it did."
    )
    format: str | None = Field(default=None, description="csv, jsonl, json or parquet.")
    row_count: int | None = Field(default=None, description="Rows read, once connected.")
    columns: list[str] | None = Field(default=None, description="Column names, once connected.")
    size_bytes: int | None = Field(default=None, description="Size of the stored file.")
    created_at: str | None = Field(default=None, description="Creation time, ISO 8601.")
    connection_type: str | None = Field(default=None, description="e.g. `file`, `s3`.")
    connection_name: str | None = Field(
        default=None, description="Connection holding it; uploads go to `file_uploads`."
    )


class DatasetUploadRequest(RequestModel):
    """Body of `POST /datasets/upload`, step 1 of an upload."""

    file_name: str = Field(alias="fileName", description="Name of the file being uploaded.")
    mime_type: str = Field(alias="mimeType", description="Its MIME type.")


class DatasetUploadTarget(WireModel):
    """Reply to step 1: where to PUT the bytes (no auth header) and the token for step 3."""

    presigned_url: str = Field(alias="presignedUrl", description="Plain PUT target for the bytes.")
    upload_token: str = Field(alias="uploadToken", description="Names the upload in step 3.")
    required_headers: dict[str, str] = Field(
        default_factory=dict,
        alias="requiredHeaders",
        description="Headers the PUT of step 2 must send (production's storage needs them).",
    )


class DatasetUploadComplete(RequestModel):
    """Body of `PUT /datasets/upload`, step 3: turn the uploaded bytes into a dataset."""

    name: str = Field(description="Name of the dataset to create.")
    upload_token: str = Field(alias="uploadToken", description="Token from step 1.")
    description: str | None = Field(default=None, description="Free text, shown in the console.")
