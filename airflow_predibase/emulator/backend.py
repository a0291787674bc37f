"""One emulator instance: its context, its resources, its faults, and the whole-state operations.

Routes stay thin and call into the resource services hung off `Backend`; the services
raise `ApiError` for anything the platform would refuse. The dependencies point one way:
routes -> backend -> resources -> context; nothing below imports what is above it.
"""

from __future__ import annotations

from typing import Any

from airflow_predibase.client.models import FinetuningJobStatus
from airflow_predibase.emulator.clock import Clock
from airflow_predibase.emulator.config import EmulatorConfig
from airflow_predibase.emulator.context import Context
from airflow_predibase.emulator.faults import FaultBook
from airflow_predibase.emulator.rate_limit import RateLimiter
from airflow_predibase.emulator.resources._base import KindTable, Resource
from airflow_predibase.emulator.resources.batch import BatchJobs
from airflow_predibase.emulator.resources.datasets import Datasets
from airflow_predibase.emulator.resources.deployments import Deployments
from airflow_predibase.emulator.resources.finetuning import FinetuningJobs
from airflow_predibase.emulator.resources.repos import Repos
from airflow_predibase.emulator.spec import RequestSchemas
from airflow_predibase.emulator.store import Store


class Backend(Context):
    """Everything one app knows. Built once per app; never shared between apps."""

    def __init__(self, config: EmulatorConfig, store: Store, clock: Clock) -> None:
        super().__init__(config, store, clock)
        self.faults = FaultBook()
        self.rate_limit = RateLimiter(config.rate_limit, clock.now)
        self.schemas = RequestSchemas(config.accelerators)
        self.datasets = Datasets(self)
        self.repos = Repos(self, self.datasets, job_status=self._job_status)
        self.finetuning = FinetuningJobs(self, self.datasets, self.repos)
        self.deployments = Deployments(self)
        self.batch = BatchJobs(self, self.datasets, self.repos)
        #: In the order `GET /__emulator__/state` lists them.
        self.resources: tuple[Resource, ...] = (
            self.datasets,
            self.repos,
            self.finetuning,
            self.deployments,
            self.batch,
        )
        #: What the control API's `kind` may name: every kind with a lifecycle, by any name.
        self.kinds = KindTable([self.datasets, self.finetuning, self.deployments, self.batch])

    def _job_status(self, job_id: str) -> FinetuningJobStatus | None:
        return self.finetuning.status_of(job_id)

    def reset(self) -> None:
        """Forget every resource, fault and scheduled failure; back to the configured profile,
        rate limit (its counts from zero), unpaged lists, and the clock without its skips (a
        manual clock: back to its start)."""
        self.store.clear()
        self.faults.clear()
        self.rate_limit.configure(self.config.rate_limit)
        self.failures.clear()
        self.profile = self.config.profile
        self.page_size = None
        self.clock.rewind()
        self.repos.forget_cache()

    def snapshot(self) -> dict[str, Any]:
        """Every resource as GET would show it, with counts, for system tests."""
        resources = {resource.state_key: resource.views() for resource in self.resources}
        return {
            "profile": self.profile.model_dump(),
            "clock": self.now(),
            "counts": {name: len(items) for name, items in resources.items()},
            **resources,
            "faults": self.faults.describe(),
            "scheduled_failures": {k: len(v) for k, v in self.failures.items() if v},
            "page_size": self.page_size,
        }
