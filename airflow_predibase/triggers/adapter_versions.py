"""An event trigger for `AssetWatcher`: fires once per adapter version that becomes ready.

Whoever trained the version (a DAG, a notebook, the console) does not matter: the trigger
polls the repository and compares it with what it has already settled.

Exactly once, and what that rests on (docs/assets.md, "What fires, and exactly once"):

- **Settled versions.** A version is *settled* once the trigger has fired for it, or it
  ended errored or canceled (never to fire), or it was already finished when the trigger
  first ran for this repository. Only a version that is ready and not settled fires.
  Versions are kept as `through` (every version up to it is settled) plus the settled
  numbers above it, because versions finish out of order: version 3 can be ready while
  version 2 still trains.
- **The watermark outlives the trigger.** Airflow 3.3 hands a watcher's trigger the
  watched Asset's state store (`asset_state_store`); the settled versions are kept there,
  under a key naming the connection and repository. A triggerer restart, a trigger moved
  to another triggerer, or a trigger re-created because its kwargs changed, read it back
  and carry on: nothing old fires again.
- **Never lose one; rarely repeat one.** The triggerer sends fired events to the database
  about once a second and drops those still queued when it stops. So the watermark is
  written `commit_delay` seconds after the events it covers were yielded: a stop before
  then fires those versions again after the restart rather than losing them. A duplicate
  needs a stop inside that window after the event was already saved.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Iterable
from typing import Any

from airflow.triggers.base import BaseEventTrigger, TriggerEvent
from pydantic import BaseModel, ConfigDict, Field

from airflow_predibase.client.errors import NotFoundError, PredibaseError, RateLimitError
from airflow_predibase.client.models import AdapterVersion

#: Longest wait between polls while polling keeps failing, in seconds.
MAX_BACKOFF = 300.0

_RNG = random.Random()


class AdapterVersionReady(BaseModel):
    """The event payload: one adapter version that became ready.

    An `AssetWatcher` stores it in the Asset event's extra as ``extra["payload"]``.
    """

    model_config = ConfigDict(extra="forbid")

    adapter_id: str = Field(description="`<repo>/<version>`, the ID to serve it with.")
    repo: str = Field(description="The adapter repository.")
    version: int = Field(description="The version number in the repository.")
    base_model: str | None = Field(default=None, description="The base model it adapts.")
    finetuning_job: str | None = Field(default=None, description="The job that trained it.")
    created_at: str | None = Field(default=None, description="When the version was created.")

    @classmethod
    def of(cls, repo: str, version: AdapterVersion) -> AdapterVersionReady:
        return cls(
            adapter_id=f"{repo}/{version.version}",
            repo=repo,
            version=version.version,
            base_model=version.base_model,
            finetuning_job=version.finetuning_job,
            created_at=version.created_at,
        )


class SettledVersions(BaseModel):
    """The versions a repository's watcher is done with, as stored in the Asset's state."""

    model_config = ConfigDict(extra="ignore")

    through: int = Field(default=0, description="Every version up to this one is settled.")
    above: list[int] = Field(default_factory=list, description="Settled versions past it.")

    @classmethod
    def first_seen(cls, versions: Iterable[AdapterVersion]) -> SettledVersions:
        """At the first run: every version already finished is settled (old news); one
        still training is not, and fires when it becomes ready."""
        settled = cls()
        for version in versions:
            if version.status.is_terminal:
                settled.settle(version.version)
        return settled

    def __contains__(self, version: int) -> bool:
        return version <= self.through or version in self.above

    def settle(self, version: int) -> None:
        if version in self:
            return
        found = set(self.above) | {version}
        while self.through + 1 in found:
            self.through += 1
            found.discard(self.through)
        self.above = sorted(found)


class NewAdapterVersionTrigger(BaseEventTrigger):
    """Fires one event per adapter version of `repo` that becomes ready, for an `AssetWatcher`.

    Each event's payload is an `AdapterVersionReady` (adapter_id, repo, version,
    base_model, finetuning_job, created_at). Versions that were already finished the first
    time the trigger ran for this repository do not fire; a version archived before it was
    seen ready does not fire either.

    :param repo: the adapter repository to watch. It may not exist yet.
    :param predibase_conn_id: the Airflow connection; looked up asynchronously.
    :param poll_interval: seconds between polls of the repository (jittered ±20 %).
    """

    #: Seconds between yielding events and storing the watermark that covers them; longer
    #: than the triggerer takes to send its events to the database (about 1 s).
    commit_delay: float = 3.0

    def __init__(
        self,
        repo: str,
        predibase_conn_id: str = "predibase_default",
        poll_interval: float = 60.0,
    ) -> None:
        super().__init__()
        if not repo or "/" in repo:
            raise ValueError(f"repo must be a repository name without '/', got {repo!r}")
        if float(poll_interval) <= 0:
            raise ValueError(f"poll_interval must be > 0 seconds, got {poll_interval!r}")
        self.repo = repo
        self.predibase_conn_id = predibase_conn_id
        self.poll_interval = float(poll_interval)
        self._settled: SettledVersions | None = None
        self._store_usable = True

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "repo": self.repo,
                "predibase_conn_id": self.predibase_conn_id,
                "poll_interval": self.poll_interval,
            },
        )

    @property
    def state_key(self) -> str:
        """The key of the watermark in the watched Asset's state store."""
        return f"predibase.adapter_versions.{self.predibase_conn_id}.{self.repo}"

    async def _client(self) -> Any:
        from airflow_predibase.hooks.predibase import PredibaseHook

        return await PredibaseHook(predibase_conn_id=self.predibase_conn_id).get_async_client()

    def _jittered(self, seconds: float) -> float:
        return seconds * _RNG.uniform(0.8, 1.2)

    async def run(self) -> AsyncIterator[TriggerEvent]:
        client = None
        failures = 0
        while True:
            try:
                client = client or await self._client()
                versions = await self._versions(client)
            except PredibaseError as error:
                failures += 1
                delay = self._backoff(error, failures)
                self.log.warning(
                    "polling adapter repository %s failed (%d in a row; next try in %.0fs): %s",
                    self.repo,
                    failures,
                    delay,
                    error,
                )
                await asyncio.sleep(delay)
                continue
            failures = 0
            settled = await self._load(versions)
            if settled is not None:
                ready = self._newly_settled(settled, versions)
                for event in ready:
                    self.log.info("adapter %s is ready: firing", event.adapter_id)
                    yield TriggerEvent(event.model_dump())
                if ready:
                    await asyncio.sleep(self.commit_delay)
                    await self._save(settled)
            await asyncio.sleep(self._jittered(self.poll_interval))

    async def _versions(self, client: Any) -> list[AdapterVersion]:
        try:
            repo = await client.get_repo(self.repo)
        except NotFoundError:
            return []  # not created yet: nothing to fire, nothing to settle
        return sorted(repo.versions, key=lambda v: v.version)

    def _newly_settled(
        self, settled: SettledVersions, versions: list[AdapterVersion]
    ) -> list[AdapterVersionReady]:
        """Settle every finished, unsettled version; the ready ones are returned to fire."""
        fire: list[AdapterVersionReady] = []
        for version in versions:
            if version.version in settled or not version.status.is_terminal:
                continue
            settled.settle(version.version)
            if version.status.is_success and not version.archived:
                fire.append(AdapterVersionReady.of(self.repo, version))
            else:
                self.log.info(
                    "adapter %s/%s ended %s%s: not firing",
                    self.repo,
                    version.version,
                    version.status,
                    " (archived)" if version.archived else "",
                )
        # Settled-but-not-fired versions are stored with the next firing; until then a
        # restart re-reads them as finished and settles them again, which fires nothing.
        return fire

    def _backoff(self, error: PredibaseError, failures: int) -> float:
        delay = min(self.poll_interval * 2 ** (failures - 1), MAX_BACKOFF)
        if isinstance(error, RateLimitError) and error.retry_after:
            delay = max(delay, min(error.retry_after, MAX_BACKOFF))
        return self._jittered(delay)

    # -- the watermark ----------------------------------------------------------------------

    async def _load(self, versions: list[AdapterVersion]) -> SettledVersions | None:
        """The settled versions: in memory, else from the Asset's state store, else (first
        run) the versions finished now, stored at once. None if the store could not be read
        (tried again next poll: starting afresh would skip what became ready meanwhile)."""
        if self._settled is not None:
            return self._settled
        store = self._store()
        if store is not None:
            try:
                stored = await store.aget(self.state_key)
            except ValueError as error:  # the trigger watches several Assets: no single store
                stored = None
                self._in_memory_only(error)
            except Exception as error:  # the store's errors are Airflow's, not ours to list
                self.log.warning("cannot read the watermark of %s: %s", self.repo, error)
                return None
            if stored is not None:
                self._settled = SettledVersions.model_validate(stored)
                self.log.info(
                    "watching %s from its stored watermark: settled through version %d, and %s",
                    self.repo,
                    self._settled.through,
                    self._settled.above or "nothing after it",
                )
                return self._settled
        self._settled = SettledVersions.first_seen(versions)
        self.log.info(
            "watching %s from now: %d finished version(s) already there will not fire",
            self.repo,
            sum(1 for v in versions if v.status.is_terminal),
        )
        await self._save(self._settled)
        return self._settled

    def _store(self) -> Any:
        """The watched Asset's state store, if Airflow gave one (3.3+, as a watcher of one
        Asset); else None, and the watermark lives in memory only."""
        store = getattr(self, "asset_state_store", None)
        if store is None or not self._store_usable:
            return None
        return store

    async def _save(self, settled: SettledVersions) -> None:
        store = self._store()
        if store is None:
            return
        try:
            await store.aset(self.state_key, settled.model_dump())
        except ValueError as error:  # the trigger watches several Assets: no single store
            self._in_memory_only(error)
        except Exception as error:  # kept in memory; the next firing stores it again
            self.log.warning("cannot store the watermark of %s: %s", self.repo, error)

    def _in_memory_only(self, error: Exception) -> None:
        self._store_usable = False
        self.log.warning(
            "the watermark of %s is kept in memory only (%s); a restart starts afresh",
            self.repo,
            error,
        )
