"""Adapter repositories and their numbered versions, and what each adapter has learned.

A version is reserved when its fine-tuning job is created (numbered 1, 2, 3... per repo,
never reused) and its status follows the job: `pending` while it trains, then `ready`,
`errored` or `canceled`.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from airflow_predibase.client.models import (
    AdapterVersion,
    AdapterVersionStatus,
    FinetuningJobStatus,
    Repo,
    RepoRequest,
)
from airflow_predibase.emulator.context import Context
from airflow_predibase.emulator.errors import ApiError
from airflow_predibase.emulator.model_behaviour import AdapterMemory, memory_from_rows
from airflow_predibase.emulator.resources._base import Resource
from airflow_predibase.emulator.resources.datasets import Datasets
from airflow_predibase.emulator.store import Doc
from airflow_predibase.emulator.tabular import train_rows
from airflow_predibase.emulator.wire import iso, require_text, wire

_VERSION_STATUS = {
    FinetuningJobStatus.COMPLETED: AdapterVersionStatus.READY,
    FinetuningJobStatus.ERRORED: AdapterVersionStatus.ERRORED,
    FinetuningJobStatus.CANCELED: AdapterVersionStatus.CANCELED,
    FinetuningJobStatus.STOPPED: AdapterVersionStatus.CANCELED,
}
_MEMORY_CACHE = 16

#: The status of a fine-tuning job by its ID (None: no such job). Injected rather than
#: imported: the jobs need the repositories, so the repositories cannot need the jobs.
JobStatus = Callable[[str], FinetuningJobStatus | None]


class Repos(Resource):
    # Not a waitable kind (no entry in airflow_predibase.kinds) and no lifecycle of its own.
    kind = "repo"
    aliases = ("repos",)
    label = "adapter repository"
    state_key = "repos"
    stored_as = "repo"

    def __init__(self, ctx: Context, datasets: Datasets, job_status: JobStatus) -> None:
        super().__init__(ctx)
        self.datasets = datasets
        self._job_status_of = job_status
        self._memories: OrderedDict[str, AdapterMemory] = OrderedDict()

    def create(self, request: RepoRequest) -> dict[str, Any]:
        name = require_text(request.name, "name")
        if "/" in name:
            raise ApiError(400, f"repository name {name!r} must not contain '/'")
        self.require_free(name)
        doc: Doc = {
            "name": name,
            "description": request.description,
            "created_at": self.ctx.now(),
            "next_version": 1,
            "versions": [],
        }
        self.save(doc)
        return self.view(doc)

    def delete(self, name: str) -> dict[str, Any]:
        doc = self.load(name)
        for entry in doc["versions"]:
            if not self._job_status(entry).is_terminal:
                raise ApiError(
                    409, f"repository {name!r} has a fine-tuning job still running ({entry['job']})"
                )
        self.store.delete(self.stored_as, name)
        return {"message": f"repository {name!r} deleted"}

    def reserve_version(self, repo: Doc, job_id: str, base_model: str, knowledge: Doc) -> int:
        """The next version number of `repo`, recorded as produced by `job_id`."""
        number = int(repo["next_version"])
        repo["next_version"] = number + 1
        repo["versions"].append(
            {
                "version": number,
                "job": job_id,
                "base_model": base_model,
                "created_at": self.ctx.now(),
                "archived": False,
                "knowledge": knowledge,
            }
        )
        self.save(repo)
        return number

    def _job_status(self, entry: Doc) -> FinetuningJobStatus:
        status = self._job_status_of(entry["job"]) if entry.get("job") else None
        return FinetuningJobStatus.COMPLETED if status is None else status

    def _version_view(self, repo: str, entry: Doc) -> dict[str, Any]:
        status = _VERSION_STATUS.get(self._job_status(entry), AdapterVersionStatus.PENDING)
        return wire(
            AdapterVersion,
            {
                "repo": repo,
                "version": entry["version"],
                "status": status,
                "baseModel": entry["base_model"],
                "archived": entry["archived"],
                "finetuningJob": entry.get("job"),
                "created_at": iso(entry["created_at"]),
            },
        )

    def view(self, doc: Doc) -> dict[str, Any]:
        versions = [self._version_view(doc["name"], entry) for entry in doc["versions"]]
        fields = {
            "name": doc["name"],
            "description": doc.get("description"),
            "created_at": iso(doc["created_at"]),
            "versions": versions,
        }
        return wire(Repo, fields)

    def _entry(self, repo: str, version: int) -> Doc:
        doc = self.find(repo)
        entry: Doc | None = None
        if doc is not None:
            entry = next((e for e in doc["versions"] if e["version"] == version), None)
        if entry is None:
            raise ApiError(404, f"adapter version {repo}/{version} not found")
        return entry

    def version(self, repo: str, version: int) -> dict[str, Any]:
        return self._version_view(repo, self._entry(repo, version))

    def entry(self, repo: str, version: int) -> Doc:
        """The stored record of version `repo/version` (404 if there is none)."""
        return self._entry(repo, version)

    def version_status(self, entry: Doc) -> AdapterVersionStatus:
        return _VERSION_STATUS.get(self._job_status(entry), AdapterVersionStatus.PENDING)

    def set_archived(self, repo: str, version: int, archived: bool) -> None:
        """Archive or unarchive one version (production's `PUT .../version/{tag}`)."""
        doc = self.load(repo)
        self._entry(repo, version)["archived"] = archived
        for entry in doc["versions"]:
            if entry["version"] == version:
                entry["archived"] = archived
        self.save(doc)

    def delete_version(self, repo: str, version: int) -> None:
        """Forget one version; its number is never reused (production's `DELETE`)."""
        doc = self.load(repo)
        entry = self._entry(repo, version)
        if not self._job_status(entry).is_terminal:
            raise ApiError(409, f"adapter version {repo}/{version} is still training")
        doc["versions"] = [e for e in doc["versions"] if e["version"] != version]
        self.save(doc)

    def ready_version(self, adapter_id: str) -> Doc:
        """The version `repo/N`, which must exist (404) and be ready (404: not loadable yet)."""
        repo, _, number = adapter_id.rpartition("/")
        if not repo or not (number.isascii() and number.isdigit()):
            raise ApiError(400, f"adapter ID {adapter_id!r} is not of the form <repo>/<version>")
        entry = self._entry(repo, int(number))
        status = _VERSION_STATUS.get(self._job_status(entry), AdapterVersionStatus.PENDING)
        if status != AdapterVersionStatus.READY:
            raise ApiError(404, f"adapter {adapter_id} is {status}, not ready to serve")
        return entry

    def memory(self, adapter_id: str, entry: Doc) -> AdapterMemory:
        """What adapter `adapter_id` learned from its training rows."""
        cache_key = f"{adapter_id}@{entry.get('job')}"
        memory = self._memories.get(cache_key)
        if memory is None:
            knowledge = entry["knowledge"]
            dataset = self.datasets.find(knowledge["dataset"])
            rows: list[dict[str, Any]] = []
            if dataset is not None and dataset["_blob"] == knowledge["blob"]:
                rows = train_rows(self.datasets.table(dataset))
            memory = memory_from_rows(rows, knowledge["task"])
            self._memories[cache_key] = memory
            while len(self._memories) > _MEMORY_CACHE:
                self._memories.popitem(last=False)
        self._memories.move_to_end(cache_key)
        return memory

    def forget_cache(self) -> None:
        self._memories.clear()
