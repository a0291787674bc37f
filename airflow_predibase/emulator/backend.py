"""One emulator instance's state and rules: the store, the clock, the profile, the faults.

Routes stay thin and call into the resource services hung off `Backend`; the services
raise `ApiError` for anything the platform would refuse.
"""

from __future__ import annotations

import uuid
from typing import Any, Protocol

from airflow_predibase.client.models import BaseModelInfo
from airflow_predibase.emulator.clock import Clock
from airflow_predibase.emulator.config import EmulatorConfig, TimingProfile
from airflow_predibase.emulator.errors import ApiError
from airflow_predibase.emulator.faults import FaultBook
from airflow_predibase.emulator.lifecycle import (
    Phase,
    Position,
    advanced,
    locate,
    reached,
    timeline,
)
from airflow_predibase.emulator.spec import RequestSchemas
from airflow_predibase.emulator.store import Doc, Store


class Tracked(Protocol):
    """A resource kind with a lifecycle, as the control API's advance/force see it."""

    kind: str
    statuses: tuple[str, ...]

    def load(self, key: str) -> Doc: ...
    def save(self, doc: Doc) -> None: ...
    def plan(self, doc: Doc, status: str) -> list[Phase]: ...
    def view(self, doc: Doc) -> dict[str, Any]: ...
    def views(self) -> list[dict[str, Any]]: ...


class Backend:
    """Everything one app knows. Built once per app; never shared between apps."""

    def __init__(self, config: EmulatorConfig, store: Store, clock: Clock) -> None:
        # Imported here: the resources import this module for their type hints.
        from airflow_predibase.emulator.resources.batch import BatchJobs
        from airflow_predibase.emulator.resources.datasets import Datasets
        from airflow_predibase.emulator.resources.deployments import Deployments
        from airflow_predibase.emulator.resources.finetuning import FinetuningJobs
        from airflow_predibase.emulator.resources.repos import Repos

        self.config = config
        self.store = store
        self.clock = clock
        self.profile: TimingProfile = config.profile
        self.faults = FaultBook()
        self.schemas = RequestSchemas()
        self._failures: dict[str, list[str]] = {}
        self.datasets = Datasets(self)
        self.repos = Repos(self)
        self.finetuning = FinetuningJobs(self)
        self.deployments = Deployments(self)
        self.batch = BatchJobs(self)
        self.tracked: dict[str, Tracked] = {
            "datasets": self.datasets,
            "finetuning": self.finetuning,
            "deployments": self.deployments,
            "batch": self.batch,
        }

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

    def on_read(self, tracked: Tracked, doc: Doc) -> Doc:
        """The `instant` profile's rule: each read moves the resource one state on."""
        if self.profile.advance_on_read:
            doc["_tl"] = advanced(doc["_tl"], self.now())
            tracked.save(doc)
        return doc

    def advance(self, kind: str, key: str) -> dict[str, Any]:
        tracked = self._tracked(kind)
        doc = tracked.load(key)
        doc["_tl"] = advanced(doc["_tl"], self.now())
        tracked.save(doc)
        return tracked.view(doc)

    def force(self, kind: str, key: str, status: str, error: str | None) -> dict[str, Any]:
        tracked = self._tracked(kind)
        if status not in tracked.statuses:
            valid = ", ".join(tracked.statuses)
            raise ApiError(400, f"unknown {kind} status {status!r}; valid statuses: {valid}")
        doc = tracked.load(key)
        if error is not None:
            doc["_error"] = error
        self.begin(doc, tracked.plan(doc, status))
        tracked.save(doc)
        return tracked.view(doc)

    def _tracked(self, kind: str) -> Tracked:
        try:
            return self.tracked[kind]
        except KeyError:
            valid = ", ".join(self.tracked)
            raise ApiError(404, f"unknown resource kind {kind!r}; valid kinds: {valid}") from None

    # -- platform rules shared by several resources -------------------------------------

    def require_base_model(self, name: str, *, finetuning: bool = False) -> BaseModelInfo:
        model = self.config.base_model(name)
        if model is None:
            valid = ", ".join(m.name for m in self.config.base_models)
            raise ApiError(400, f"unknown base model {name!r}; supported base models: {valid}")
        if finetuning and model.supports_finetuning is False:
            raise ApiError(400, f"base model {name!r} cannot be fine-tuned")
        return model

    def schedule_failures(self, kind: str, count: int, error: str) -> None:
        """The next `count` resources of `kind` created will end in failure."""
        self._tracked(kind)
        self._failures.setdefault(kind, []).extend([error] * count)

    def take_failure(self, kind: str) -> str | None:
        queue = self._failures.get(kind)
        return queue.pop(0) if queue else None

    @staticmethod
    def new_id() -> str:
        return str(uuid.uuid4())

    # -- the control API's whole-state operations ----------------------------------------

    def reset(self) -> None:
        """Forget every resource, fault and scheduled failure; back to the configured profile."""
        self.store.clear()
        self.faults.clear()
        self._failures.clear()
        self.profile = self.config.profile
        self.repos.forget_cache()

    def snapshot(self) -> dict[str, Any]:
        """Every resource as GET would show it, with counts, for system tests."""
        resources: dict[str, list[dict[str, Any]]] = {
            "datasets": self.datasets.views(),
            "repos": self.repos.views(),
            "finetuning_jobs": self.finetuning.views(),
            "deployments": self.deployments.views(),
            "batch_jobs": self.batch.views(),
        }
        return {
            "profile": self.profile.model_dump(),
            "clock": self.now(),
            "counts": {name: len(items) for name, items in resources.items()},
            **resources,
            "faults": self.faults.describe(),
            "scheduled_failures": {k: len(v) for k, v in self._failures.items() if v},
        }
