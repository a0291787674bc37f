"""The resources a DAG can wait on, each defined once.

A `ResourceKind` says everything the provider needs to know about one waitable resource:
its name (the sensor's ``job_type``), how it reads in a log line, where the console shows
it, its status enum, and the client calls that get and cancel it. Operators, triggers, the
sensor, the console link and the emulator read it from here; nothing looks a kind, a
class or a client method up by a name string elsewhere.

The client calls work on the sync and the async client alike (the async one returns an
awaitable). No Airflow here: the waiting core and the emulator use this module too.

Adding a kind: one `ResourceKind` below, its trigger subclass in `triggers/base.py`, and
the client methods it names (see docs/architecture.md).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from airflow_predibase.client.models.status import (
    BatchInferenceJobStatus,
    DatasetStatus,
    DeploymentStatus,
    FinetuningJobStatus,
)

#: A client call on one resource: ``call(client, resource_id)``; awaitable on the async client.
ClientCall = Callable[[Any, str], Any]


@dataclass(frozen=True)
class ResourceKind:
    """One waitable Predibase resource."""

    name: str
    """The kind's name: the sensor's ``job_type`` and the trigger event's ``kind``."""
    label: str
    """How the kind reads in a log line or an error, e.g. ``fine-tuning job``."""
    console_path: str
    """The console page of one resource, below the console base; ``{id}`` is the resource ID."""
    status: type[Any]
    """The status enum, which knows terminal, success and cancelled."""
    get: ClientCall
    """Fetch the resource."""
    cancel: ClientCall | None = None
    """Cancel it, or None when the kind has no cancel (deployments, datasets)."""

    def __str__(self) -> str:
        return self.name


FINETUNING_JOB = ResourceKind(
    name="finetuning_job",
    label="fine-tuning job",
    console_path="/finetuning/jobs/{id}",
    status=FinetuningJobStatus,
    get=lambda client, job_id: client.get_finetuning_job(job_id),
    cancel=lambda client, job_id: client.cancel_finetuning_job(job_id),
)

BATCH_INFERENCE_JOB = ResourceKind(
    name="batch_inference_job",
    label="batch inference job",
    console_path="/batch-inference/jobs/{id}",
    status=BatchInferenceJobStatus,
    get=lambda client, job_id: client.get_batch_inference_job(job_id),
    cancel=lambda client, job_id: client.cancel_batch_inference_job(job_id),
)

DEPLOYMENT = ResourceKind(
    name="deployment",
    label="deployment",
    console_path="/deployments/{id}",
    status=DeploymentStatus,
    get=lambda client, name: client.get_deployment(name),
)

DATASET = ResourceKind(
    name="dataset",
    label="dataset",
    console_path="/data/datasets/{id}",
    status=DatasetStatus,
    get=lambda client, name: client.get_dataset(name),
)

#: Every waitable kind, by name.
KINDS: dict[str, ResourceKind] = {
    kind.name: kind for kind in (FINETUNING_JOB, BATCH_INFERENCE_JOB, DEPLOYMENT, DATASET)
}


def resource_kind(name: str, field: str = "job_type") -> ResourceKind:
    """The kind called `name`, or ValueError naming the field and the valid choices."""
    try:
        return KINDS[name]
    except (KeyError, TypeError):
        raise ValueError(
            f"{field}={name!r} is not valid; choose one of: {', '.join(KINDS)}"
        ) from None
