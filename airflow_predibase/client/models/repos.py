"""Adapter repositories and their numbered versions (`repo/N`)."""

from __future__ import annotations

from pydantic import Field

from airflow_predibase.client.models._base import RequestModel, WireModel
from airflow_predibase.client.models.status import AdapterVersionStatus


class RepoRequest(RequestModel):
    """Body of `POST /repos`."""

    name: str = Field(description="Repository name.")
    description: str | None = Field(default=None, description="Free text.")


class AdapterVersion(WireModel):
    """One trained adapter, addressed as `<repo>/<version>`."""

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

    @property
    def adapter_id(self) -> str:
        """`<repo>/<version>`, the ID used for serving."""
        return f"{self.repo}/{self.version}"


class Repo(WireModel):
    """An adapter repository."""

    name: str = Field(description="Repository name.")
    description: str | None = Field(default=None, description="Free text.")
    created_at: str | None = Field(default=None, description="Creation time, ISO 8601.")
    versions: list[AdapterVersion] = Field(default_factory=list, description="Its versions.")
