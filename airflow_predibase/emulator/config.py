"""Validated emulator configuration and the timing profiles.

A profile says how long every lifecycle phase lasts. Phase durations must be positive, so
no resource is ever born in its final state: the code that waits for it always waits.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from airflow_predibase.client.models import ACCELERATORS, BaseModelInfo
from airflow_predibase.dataset_files import MAX_FILE_BYTES

DEFAULT_TOKEN = "pb_emulator_token"
DEFAULT_TENANT = "emulator"
DEFAULT_PROFILE = "fast"
#: What the emulator speaks: the seed spec, production as the official SDK speaks it, or both.
Dialect = Literal["spec", "platform", "default"]
DIALECTS: tuple[str, ...] = ("spec", "platform", "default")
DEFAULT_DIALECT = "default"
MAX_UPLOAD_BYTES = MAX_FILE_BYTES

_Positive = Field(gt=0)


class TimingProfile(BaseModel):
    """How long each lifecycle phase lasts, in seconds of the emulator's clock."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(default="custom", description="Shown by the control API.")
    advance_on_read: bool = Field(
        default=False,
        description="Each GET of a resource moves it one state on (the `instant` profile).",
    )
    dataset_connecting: float = _Positive
    finetuning_queued: float = _Positive
    finetuning_training: float = _Positive
    finetuning_stopping: float = _Positive
    deployment_pending: float = _Positive
    deployment_initializing: float = _Positive
    deployment_updating: float = _Positive
    deployment_deleting: float = _Positive
    deployment_cold_start: float = Field(
        ge=0, description="A request to a standby deployment waits this long (it queues)."
    )
    batch_queued: float = _Positive
    batch_running: float = _Positive


# `instant` moves only on reads: its durations are a day so that time alone never moves a
# resource during a test, whatever the clock does.
_DAY = 86_400.0
PROFILES: dict[str, TimingProfile] = {
    "instant": TimingProfile(
        name="instant",
        advance_on_read=True,
        dataset_connecting=_DAY,
        finetuning_queued=_DAY,
        finetuning_training=_DAY,
        finetuning_stopping=_DAY,
        deployment_pending=_DAY,
        deployment_initializing=_DAY,
        deployment_updating=_DAY,
        deployment_deleting=_DAY,
        deployment_cold_start=0.0,
        batch_queued=_DAY,
        batch_running=_DAY,
    ),
    "fast": TimingProfile(
        name="fast",
        dataset_connecting=0.3,
        finetuning_queued=0.5,
        finetuning_training=3.0,
        finetuning_stopping=0.5,
        deployment_pending=0.5,
        deployment_initializing=1.0,
        deployment_updating=1.0,
        deployment_deleting=0.5,
        deployment_cold_start=0.5,
        batch_queued=0.3,
        batch_running=1.2,
    ),
    "realistic": TimingProfile(
        name="realistic",
        dataset_connecting=5.0,
        finetuning_queued=30.0,
        finetuning_training=600.0,
        finetuning_stopping=15.0,
        deployment_pending=30.0,
        deployment_initializing=240.0,
        deployment_updating=120.0,
        deployment_deleting=30.0,
        deployment_cold_start=60.0,
        batch_queued=30.0,
        batch_running=300.0,
    ),
}


def resolve_profile(value: object) -> TimingProfile:
    """A profile from its name, a mapping of durations, or a TimingProfile."""
    if isinstance(value, TimingProfile):
        return value
    if isinstance(value, str):
        try:
            return PROFILES[value]
        except KeyError:
            raise ValueError(
                f"unknown profile {value!r}; valid profiles: {', '.join(PROFILES)}"
            ) from None
    return TimingProfile.model_validate(value)


DEFAULT_BASE_MODELS: tuple[BaseModelInfo, ...] = (
    BaseModelInfo(
        name="qwen3-8b",
        description="Qwen3 8B",
        context_window=32768,
        supports_finetuning=True,
    ),
    BaseModelInfo(
        name="llama-3-1-8b-instruct",
        description="Llama 3.1 8B Instruct",
        context_window=8192,
        supports_finetuning=True,
    ),
    BaseModelInfo(
        name="mistral-7b-instruct-v0-2",
        description="Mistral 7B Instruct v0.2",
        context_window=32768,
        supports_finetuning=True,
    ),
    BaseModelInfo(
        name="solar-1-mini-chat-240612",
        description="Solar Mini Chat",
        context_window=32768,
        supports_finetuning=True,
    ),
    BaseModelInfo(
        name="qwen2-5-7b-instruct",
        description="Qwen2.5 7B Instruct",
        context_window=32768,
        supports_finetuning=True,
    ),
    BaseModelInfo(
        name="llama-3-2-1b-instruct",
        description="Llama 3.2 1B Instruct",
        context_window=8192,
        supports_finetuning=True,
    ),
)


class EmulatorConfig(BaseModel):
    """Everything an emulator instance is started with."""

    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)

    token: str = Field(default=DEFAULT_TOKEN, min_length=1, description="Bearer token.")
    tenant: str = Field(
        default=DEFAULT_TENANT,
        pattern=r"^[A-Za-z0-9_-]+$",
        description="Tenant ID in serving URLs.",
    )
    profile: TimingProfile = Field(
        default=PROFILES[DEFAULT_PROFILE], description="A name from PROFILES, or durations."
    )
    state_file: Path | None = Field(
        default=None, description="SQLite file that keeps state across restarts."
    )
    base_models: tuple[BaseModelInfo, ...] = Field(
        default=DEFAULT_BASE_MODELS, min_length=1, description="What GET /models lists."
    )
    accelerators: dict[str, str] = Field(
        default_factory=lambda: dict(ACCELERATORS),
        min_length=1,
        description="The hardware this server knows: accelerator/SKU ID -> what it is. Add "
        "an ID to play a platform that has hardware the provider's table does not list.",
    )
    max_upload_bytes: int = Field(default=MAX_UPLOAD_BYTES, gt=0, description="Per file.")
    seed: int = Field(default=0, description="Seeds the default chaos generator.")
    dialect: Dialect = Field(
        default="default",
        description="`spec`: the seed spec's paths and shapes; `platform`: what the official "
        "SDK sends and reads; `default`: both (see docs/platform.md).",
    )
    upload_required_headers: dict[str, str] = Field(
        default_factory=dict,
        description="Headers the begin-upload reply announces as `requiredHeaders`; the PUT to "
        "the presigned URL must carry each of them.",
    )
    rate_limit: float | None = Field(
        default=None,
        gt=0,
        description="Requests per second each tenant (token) may send, as production's "
        "gateway limits them; past it, 429 with Retry-After (see rate_limit.py). None: no limit.",
    )

    @field_validator("profile", mode="before")
    @classmethod
    def _named_profile(cls, value: Any) -> TimingProfile:
        return resolve_profile(value)

    def base_model(self, name: str) -> BaseModelInfo | None:
        """The catalogue entry called `name`, if any."""
        return next((m for m in self.base_models if m.name == name), None)
