"""What every resource of one emulator may use: config, store, clock, profile, lifecycles.

Resources depend on this and on nothing above them: `Backend` builds the resources and
hands each this context (and the sibling resources it needs), never itself.
"""

from __future__ import annotations

import uuid
from contextvars import ContextVar

from airflow_predibase.client.models import BaseModelInfo
from airflow_predibase.emulator.clock import Clock
from airflow_predibase.emulator.config import EmulatorConfig, TimingProfile
from airflow_predibase.emulator.errors import ApiError
from airflow_predibase.emulator.faults import CreateHold
from airflow_predibase.emulator.lifecycle import Phase, Position, locate, reached, timeline
from airflow_predibase.emulator.store import Doc, Store


class Context:
    """One emulator's shared state. Built once per app; never shared between apps."""

    def __init__(self, config: EmulatorConfig, store: Store, clock: Clock) -> None:
        self.config = config
        self.store = store
        self.clock = clock
        self.profile: TimingProfile = config.profile
        #: Scheduled failures: {canonical kind name: [error, ...]}, taken first in first out.
        self.failures: dict[str, list[str]] = {}
        #: At most this many items per list answer (None: as many as asked, all by default).
        self.page_size: int | None = None
        #: Set around one request by a `late_commit` or `list_lag` fault; see `faults`.
        self.holds: ContextVar[CreateHold | None] = ContextVar("create_hold", default=None)

    # -- time and lifecycles -------------------------------------------------------------

    def now(self) -> float:
        return self.clock.now()

    def begin(self, doc: Doc, phases: list[Phase]) -> None:
        """Put `doc` on a new timeline from now, remembering when earlier phases began."""
        now = self.now()
        if "_tl" in doc:
            doc["_marks"] = {**doc.get("_marks", {}), **reached(doc["_tl"], now)}
        doc["_tl"] = timeline(phases, now)

    def position(self, doc: Doc) -> Position:
        return locate(doc["_tl"], self.now())

    def marks(self, doc: Doc) -> dict[str, float]:
        """When each status was first reached (latest timeline wins)."""
        return {**doc.get("_marks", {}), **reached(doc["_tl"], self.now())}

    # -- platform rules shared by several resources -------------------------------------

    def require_base_model(self, name: str, *, finetuning: bool = False) -> BaseModelInfo:
        model = self.config.base_model(name)
        if model is None:
            valid = ", ".join(m.name for m in self.config.base_models)
            raise ApiError(400, f"unknown base model {name!r}; supported base models: {valid}")
        if finetuning and model.supports_finetuning is False:
            raise ApiError(400, f"base model {name!r} cannot be fine-tuned")
        return model

    def take_failure(self, kind: str) -> str | None:
        """The error the next resource of `kind` created must end with, if one is scheduled."""
        queue = self.failures.get(kind)
        return queue.pop(0) if queue else None

    @staticmethod
    def new_id() -> str:
        return str(uuid.uuid4())
