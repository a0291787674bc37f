"""The typed event a Predibase trigger yields and `execute_complete` validates.

It crosses a process boundary as JSON (triggerer -> database -> worker), so the worker
re-validates it instead of trusting a dict.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

EventStatus = Literal["success", "failed", "cancelled", "timeout"]


class JobEvent(BaseModel):
    """How a wait ended."""

    model_config = ConfigDict(extra="forbid")

    status: EventStatus = Field(description="success, failed, cancelled or timeout.")
    kind: str = Field(description="What was waited on: finetuning_job, deployment, ...")
    resource_id: str = Field(description="Job ID, or deployment / dataset name.")
    remote_status: str | None = Field(default=None, description="Last status the server sent.")
    message: str = Field(description="Human-readable summary, with the server's reason.")
    resource: dict[str, Any] | None = Field(
        default=None,
        description="The last resource seen, as JSON, when waiting on a worker. None from a "
        "trigger: the triggerer logs every event, so it carries the status only.",
    )

    def to_payload(self) -> dict[str, Any]:
        return self.model_dump(mode="json")
