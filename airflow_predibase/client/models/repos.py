"""Adapter repositories and their numbered versions (`repo/N`)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from airflow_predibase.client.models._base import RequestModel, WireModel
from airflow_predibase.client.models._wire_shapes import WireShape
from airflow_predibase.client.models.status import AdapterVersionStatus


class RepoRequest(RequestModel):
    """Body of `POST /repos`."""

    name: str = Field(description="Repository name.")
    description: str | None = Field(default=None, description="Free text.")


class AdapterVersionUpdate(RequestModel):
    """Body of `PUT /repos/{repo}/version/{n}`: archive or unarchive one version (the SDK's
    `adapters.archive` / `adapters.unarchive`)."""

    archived: bool = Field(description="True hides the version; false shows it again.")


class AdapterVersion(WireModel):
    """One trained adapter, addressed as `<repo>/<version>` (seed shape, or production's:
    `tag`, `baseModel`, `adapterPath`, `finetuningJob: {uuid, error}`)."""

    wire_shape: ClassVar[WireShape] = WireShape(
        renames={"tag": "version", "repo_name": "repo"},
        paths={
            "finetuning_job": ("finetuning_job", "uuid"),
            "error": ("finetuning_job", "error"),
            "repo": ("repo", "name"),
        },
        # Production's version follows its job's status: a completed job's version is ready.
        values={"status": {"completed": "ready", "stopped": "canceled"}},
    )

    repo: str | None = Field(default=None, description="Repository the version belongs to.")
    version: int = Field(description="Version number, 1, 2, 3... per repository.")
    status: AdapterVersionStatus = Field(
        default=AdapterVersionStatus.PENDING, description="pending, ready, errored or canceled."
    )
    base_model: str | None = Field(
        default=None, alias="baseModel", description="Base model it was trained on."
    )
    archived: bool = Field(default=False, description="Archived versions are hidden.")
    finetuning_job: str | None = Field(
        default=None, alias="finetuningJob", description="ID of the job that trained it."
    )
    created_at: str | None = Field(default=None, description="Creation time, ISO 8601.")
    adapter_path: str | None = Field(default=None, description="Where the weights are stored.")
    error: str | None = Field(default=None, description="Why training failed, if it did.")

    @property
    def adapter_id(self) -> str:
        """`<repo>/<version>`, the ID used for serving."""
        return f"{self.repo}/{self.version}"


class Repo(WireModel):
    """An adapter repository (seed shape, or production's with `uuid`)."""

    wire_shape: ClassVar[WireShape] = WireShape()

    name: str = Field(description="Repository name.")
    id: str | None = Field(default=None, description="Server-side identifier (`uuid`).")
    description: str | None = Field(default=None, description="Free text.")
    created_at: str | None = Field(default=None, description="Creation time, ISO 8601.")
    versions: list[AdapterVersion] = Field(default_factory=list, description="Its versions.")
