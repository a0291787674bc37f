"""What every emulated resource kind shares: its names, its storage, its views, its 404s.

A subclass declares its names and writes `view` (and, with a lifecycle, `plan`); loading,
saving, listing, "not found", "already exists", the `instant` profile's advance-on-read
and the control API's advance/force/fail-next all live here, once.

Names: `kind` is the canonical one. A kind in the provider's registry (`airflow_predibase.kinds`)
declares `registered` and takes its name, label and status enum from there. `aliases` are the
other spellings the control API has always accepted; `state_key` is the kind's section in
`GET /__emulator__/state`; `stored_as` is where the store keeps it (unchanged, so old
`--state-file`s still load).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable
from enum import Enum
from typing import Any, ClassVar

from airflow_predibase.emulator.context import Context
from airflow_predibase.emulator.errors import ApiError
from airflow_predibase.emulator.lifecycle import GONE, Phase, advanced
from airflow_predibase.emulator.store import Doc
from airflow_predibase.kinds import ResourceKind


class Resource(ABC):
    """One kind of stored resource, addressed by its `key_field`."""

    kind: ClassVar[str]
    aliases: ClassVar[tuple[str, ...]] = ()
    label: ClassVar[str]
    """How the kind reads in an error message, e.g. ``fine-tuning job``."""
    state_key: ClassVar[str]
    stored_as: ClassVar[str]
    key_field: ClassVar[str] = "name"
    registered: ClassVar[ResourceKind | None] = None

    def __init_subclass__(cls) -> None:
        super().__init_subclass__()
        if cls.registered is not None:
            cls.kind = cls.registered.name
            cls.label = cls.registered.label

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.store = ctx.store

    def not_found(self, key: str, **options: Any) -> ApiError:
        return ApiError(404, f"{self.label} {key!r} not found", **options)

    def _held_back(self, doc: Doc, field: str = "_hidden_until") -> bool:
        """True while a `late_commit` (or, for lists, `list_lag`) fault keeps `doc` unseen."""
        until = doc.get(field)
        return until is not None and self.ctx.now() < until

    def find(self, key: str) -> Doc | None:
        """The stored document `key`, or None (also while a late commit hides it)."""
        doc = self.store.get(self.stored_as, key)
        return None if doc is None or self._held_back(doc) else doc

    def load(self, key: str) -> Doc:
        """The stored document `key`, or a 404."""
        doc = self.find(key)
        if doc is None:
            raise self.not_found(key)
        return doc

    def require_free(self, key: str) -> None:
        """A 409 if `key` is taken."""
        # A commit still on its way holds its name too, as the platform's database would.
        doc = self.find(key) or self.store.get(self.stored_as, key)
        if doc is not None:
            raise ApiError(409, f"{self.label} {key!r} already exists")

    def save(self, doc: Doc) -> None:
        key = doc[self.key_field]
        hold = self.ctx.holds.get()
        if hold is not None and self.store.get(self.stored_as, key) is None:
            self._hold(doc, *hold)
        self.store.put(self.stored_as, key, doc)

    def _hold(self, doc: Doc, field: str, lag: float) -> None:
        """Keep a new `doc` out of sight for `lag` seconds; a late commit also starts late."""
        doc[field] = self.ctx.now() + lag
        if field == "_hidden_until" and "_tl" in doc:
            doc["_tl"] = {**doc["_tl"], "anchor": doc["_tl"]["anchor"] + lag}

    def docs(self) -> list[Doc]:
        """Every stored document a GET can see, oldest first."""
        return [doc for doc in self.store.list(self.stored_as) if not self._held_back(doc)]

    def listed_views(self) -> list[dict[str, Any]]:
        """What a list answer shows: `views()` without resources a `list_lag` holds back."""
        return [
            self.view(doc) for doc in self.docs() if not self._held_back(doc, "_unlisted_until")
        ]

    @abstractmethod
    def view(self, doc: Doc) -> dict[str, Any]:
        """The document as the platform shows it."""

    def views(self) -> list[dict[str, Any]]:
        return [self.view(doc) for doc in self.docs()]

    def get(self, key: str) -> dict[str, Any]:
        return self.view(self.load(key))


class LifecycleResource(Resource):
    """A resource whose status moves along a timeline (see `lifecycle`).

    A timeline that reaches `GONE` means the resource has finished going away: from then
    on it answers 404, and its document is dropped the next time it is looked at.
    """

    status_enum: ClassVar[type[Enum]]
    """The client's status enum: what this kind's statuses are and what they mean."""

    def __init_subclass__(cls) -> None:
        super().__init_subclass__()
        if cls.registered is not None:
            cls.status_enum = cls.registered.status

    @property
    def statuses(self) -> tuple[str, ...]:
        return tuple(str(s.value) for s in self.status_enum)

    @abstractmethod
    def plan(self, doc: Doc, status: str) -> list[Phase]:
        """The phases a resource passes through from `status` on, the last one open-ended."""

    def status(self, doc: Doc) -> str:
        return self.ctx.position(doc).status

    def _gone(self, doc: Doc) -> bool:
        if self.ctx.position(doc).status != GONE:
            return False
        self.store.delete(self.stored_as, doc[self.key_field])
        return True

    def find(self, key: str) -> Doc | None:
        doc = super().find(key)
        return None if doc is None or self._gone(doc) else doc

    def docs(self) -> list[Doc]:
        return [doc for doc in super().docs() if not self._gone(doc)]

    def get(self, key: str) -> dict[str, Any]:
        """A GET: under the `instant` profile, each one moves the resource one state on."""
        doc = self.load(key)
        if self.ctx.profile.advance_on_read:
            doc = self.advance_doc(doc)
            if self._gone(doc):
                raise self.not_found(key)
        return self.view(doc)

    def take_failure(self) -> str | None:
        """The error a newly created resource must end with, if the control API said so."""
        return self.ctx.take_failure(self.kind)

    # -- the control API ---------------------------------------------------------------------

    def advance_doc(self, doc: Doc) -> Doc:
        doc["_tl"] = advanced(doc["_tl"], self.ctx.now())
        self.save(doc)
        return doc

    def advance(self, key: str) -> dict[str, Any]:
        """Move one resource to its next state now."""
        return self.view(self.advance_doc(self.load(key)))

    def force(self, key: str, status: str, error: str | None) -> dict[str, Any]:
        """Put one resource in `status`; its lifecycle carries on from there."""
        if status not in self.statuses:
            valid = ", ".join(self.statuses)
            raise ApiError(400, f"unknown {self.label} status {status!r}; valid statuses: {valid}")
        doc = self.load(key)
        if error is not None:
            doc["_error"] = error
        self.ctx.begin(doc, self.plan(doc, status))
        self.save(doc)
        return self.view(doc)

    def schedule_failures(self, count: int, error: str) -> None:
        """The next `count` resources of this kind created will end in failure."""
        self.ctx.failures.setdefault(self.kind, []).extend([error] * count)


class KindTable:
    """The control API's one way from a kind's name, or any alias of it, to its resource."""

    def __init__(self, resources: Iterable[LifecycleResource]) -> None:
        self._by_name: dict[str, LifecycleResource] = {}
        for resource in resources:
            for name in (resource.kind, *resource.aliases):
                if name in self._by_name:
                    raise ValueError(f"two resource kinds are called {name!r}")
                self._by_name[name] = resource

    def get(self, name: str) -> LifecycleResource | None:
        return self._by_name.get(name)

    def describe(self) -> str:
        """'dataset (or datasets), ...': the canonical names, with their aliases."""
        seen: dict[str, LifecycleResource] = {}
        for resource in self._by_name.values():
            seen.setdefault(resource.kind, resource)
        return ", ".join(
            f"{r.kind} (or {', '.join(r.aliases)})" if r.aliases else r.kind for r in seen.values()
        )

    def resolve(self, name: str) -> LifecycleResource:
        """The resource kind called `name`, or a 404 listing the valid names."""
        resource = self.get(name)
        if resource is None:
            raise ApiError(404, f"unknown resource kind {name!r}; valid kinds: {self.describe()}")
        return resource
