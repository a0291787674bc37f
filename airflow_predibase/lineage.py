"""OpenLineage: what each Predibase operator reports when its task completes.

An operator records plain facts about its run (one `*Facts` object, set where the run
succeeds: in `execute` or, after a deferral, in `execute_complete` on a fresh operator,
from the trigger's event). Its ``get_openlineage_facets_on_complete``, which only the
OpenLineage provider's listener calls, turns them into an ``OperatorLineage`` here. The
openlineage classes are imported inside `build`, so DAG parsing never loads them, and
without the provider `build` returns None.

Naming (docs/lineage.md has the full table):

- a Predibase resource: namespace ``predibase://<api host[:port]>[/<tenant>]``, name
  ``datasets/<name>``, ``adapters/<repo>/<version>``, ``deployments/<name>`` or
  ``batch_inference_jobs/<id>/results``;
- a local file: namespace ``file``, name its absolute path;
- ``s3://``, ``gs://``: namespace ``<scheme>://<bucket>``, name the key.

A location's user info (an ObjectStoragePath's connection ID, a password), query and
fragment are dropped, and the token is never read.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from airflow_predibase.client.models import (
        BatchOutputRow,
        Dataset,
        FinetuningJob,
        FinetuningJobRequest,
    )
    from airflow_predibase.client.settings import ClientSettings

#: Object stores whose namespace is the bucket (OpenLineage naming; Airflow's own choice).
_BUCKET_SCHEMES = {"s3": "s3", "s3a": "s3", "s3n": "s3", "gs": "gs", "gcs": "gs"}
#: Job settings that are not training settings.
_NOT_SETTINGS = frozenset({"description"})


# -- what an operator records -------------------------------------------------------------


@dataclass(frozen=True)
class DatasetFacts:
    """CreateDatasetOperator: a file (or source) became a Predibase dataset."""

    dataset: str
    source: str
    fingerprint: str | None
    columns: tuple[str, ...] | None = None
    row_count: int | None = None

    @classmethod
    def of(cls, dataset: Dataset, source: Any, fingerprint: str | None) -> DatasetFacts:
        columns = None if dataset.columns is None else tuple(dataset.columns)
        return cls(dataset.name, str(source), fingerprint, columns, dataset.row_count)


@dataclass(frozen=True)
class FinetuneFacts:
    """FinetuneOperator: a dataset trained an adapter version."""

    job_id: str
    adapter_id: str
    dataset: str
    settings: dict[str, Any]
    parent_adapter: str | None = None

    @classmethod
    def of(
        cls, job: FinetuningJob, adapter_id: str, request: FinetuningJobRequest
    ) -> FinetuneFacts:
        """The request as sent, overridden by what the platform reports about the job (a
        re-attached job may predate this try's rendering)."""
        settings = request.model_dump(mode="json", exclude_none=True, exclude=set(_NOT_SETTINGS))
        for name in ("base_model", "dataset", "repo", "adapter_type", "task"):
            reported = getattr(job, name, None)
            if reported is not None:
                settings[name] = reported
        return cls(
            job_id=job.id,
            adapter_id=adapter_id,
            dataset=str(settings["dataset"]),
            settings=settings,
            parent_adapter=request.continue_from_version,
        )


@dataclass(frozen=True)
class BatchFacts:
    """BatchInferenceOperator: a dataset was scored by a base model and adapters."""

    job_id: str
    dataset: str
    base_model: str | None
    models: tuple[str, ...]
    outputs: tuple[str, ...]
    rows: int
    succeeded: int
    failed: int

    @staticmethod
    def models_of(results: Iterable[BatchOutputRow], base_model: str | None) -> tuple[str, ...]:
        """The adapters that answered: each result's ``model``, which the platform sets to
        the adapter ID or the base model (openapi/predibase.yml)."""
        models = {
            str(row.response.body.get("model") or "") for row in results if row.response is not None
        }
        return tuple(sorted(m for m in models if m and m != base_model))


@dataclass(frozen=True)
class DeployFacts:
    """DeployOperator: a deployment serves a base model with adapters."""

    deployment: str
    base_model: str | None
    adapters: tuple[str, ...] = ()
    action: str | None = None


@dataclass(frozen=True)
class DeleteFacts:
    """DeleteDeploymentOperator: a deployment was deleted."""

    deployment: str


Facts = DatasetFacts | FinetuneFacts | BatchFacts | DeployFacts | DeleteFacts


# -- naming -------------------------------------------------------------------------------


def predibase_namespace(settings: ClientSettings) -> str:
    """``predibase://<api host[:port]>``, plus ``/<tenant>`` when the connection names one."""
    parts = urlsplit(settings.base_url)
    host = parts.hostname or ""
    if ":" in host:  # IPv6
        host = f"[{host}]"
    authority = f"{host}:{parts.port}" if parts.port else host
    namespace = f"predibase://{authority}"
    return f"{namespace}/{settings.tenant_id}" if settings.tenant_id else namespace


def location_name(location: str) -> tuple[str, str]:
    """(namespace, name) of a file or object-store location, by OpenLineage naming."""
    parts = urlsplit(location)
    if len(parts.scheme) <= 1:  # a plain path (or a Windows drive letter)
        return "file", os.path.abspath(location)
    host = parts.netloc.rpartition("@")[2]
    if parts.scheme == "file":
        return (f"file://{host}" if host else "file"), parts.path
    bucket_scheme = _BUCKET_SCHEMES.get(parts.scheme)
    if bucket_scheme:
        return f"{bucket_scheme}://{host}", parts.path.lstrip("/")
    return f"{parts.scheme}://{host}", parts.path or "/"


def adapter_name(adapter_id: str) -> str:
    """``adapters/<repo>/<version>`` (or ``adapters/<repo>`` for an unversioned ID)."""
    return f"adapters/{adapter_id.strip('/')}"


# -- building the lineage ----------------------------------------------------------------


def build(facts: Facts | None, settings: Callable[[], ClientSettings]) -> Any:
    """The ``OperatorLineage`` for `facts`: empty if the task recorded none (it did not
    succeed, or had nothing to do), None without the OpenLineage provider.

    `settings` is called only when there is something to name (the operator's hook has
    read its connection by then, so it costs no lookup).
    """
    try:
        from airflow.providers.openlineage.extractors import OperatorLineage
    except ImportError:
        return None
    if facts is None:
        return OperatorLineage()
    namespace = predibase_namespace(settings())
    if isinstance(facts, DatasetFacts):
        return _dataset(facts, namespace)
    if isinstance(facts, FinetuneFacts):
        return _finetune(facts, namespace)
    if isinstance(facts, BatchFacts):
        return _batch(facts, namespace)
    if isinstance(facts, DeployFacts):
        return _deploy(facts, namespace)
    return _delete(facts, namespace)


def _dataset(facts: DatasetFacts, namespace: str) -> Any:
    from airflow.providers.openlineage.extractors import OperatorLineage
    from openlineage.client.event_v2 import InputDataset, OutputDataset
    from openlineage.client.facet_v2 import (
        DatasetFacet,
        OutputDatasetFacet,
        dataset_version_dataset,
        output_statistics_output_dataset,
        schema_dataset,
    )

    version: dict[str, DatasetFacet] = {}
    if facts.fingerprint:
        version["version"] = dataset_version_dataset.DatasetVersionDatasetFacet(
            datasetVersion=f"sha256:{facts.fingerprint}"
        )
    facets = dict(version)
    if facts.columns is not None:
        facets["schema"] = schema_dataset.SchemaDatasetFacet(
            fields=[schema_dataset.SchemaDatasetFacetFields(name=c) for c in facts.columns]
        )
    output_facets: dict[str, OutputDatasetFacet] = {}
    if facts.row_count is not None:
        output_facets["outputStatistics"] = (
            output_statistics_output_dataset.OutputStatisticsOutputDatasetFacet(
                rowCount=facts.row_count
            )
        )
    source_namespace, source_name = location_name(facts.source)
    return OperatorLineage(
        inputs=[InputDataset(namespace=source_namespace, name=source_name, facets=version)],
        outputs=[
            OutputDataset(
                namespace=namespace,
                name=f"datasets/{facts.dataset}",
                facets=facets,
                outputFacets=output_facets,
            )
        ],
    )


def _finetune(facts: FinetuneFacts, namespace: str) -> Any:
    from airflow.providers.openlineage.extractors import OperatorLineage
    from openlineage.client.event_v2 import InputDataset, OutputDataset
    from openlineage.client.facet_v2 import dataset_version_dataset

    from airflow_predibase.lineage_facets import PredibaseFinetuningRunFacet

    inputs = [InputDataset(namespace=namespace, name=f"datasets/{facts.dataset}")]
    if facts.parent_adapter:
        inputs.append(InputDataset(namespace=namespace, name=adapter_name(facts.parent_adapter)))
    version = facts.adapter_id.rpartition("/")[2]
    adapter = OutputDataset(
        namespace=namespace,
        name=adapter_name(facts.adapter_id),
        facets={
            "version": dataset_version_dataset.DatasetVersionDatasetFacet(datasetVersion=version)
        },
    )
    return OperatorLineage(
        inputs=inputs,
        outputs=[adapter],
        run_facets={
            "predibase_finetuning": PredibaseFinetuningRunFacet(
                jobId=facts.job_id, adapterId=facts.adapter_id, settings=dict(facts.settings)
            )
        },
    )


def _batch(facts: BatchFacts, namespace: str) -> Any:
    from airflow.providers.openlineage.extractors import OperatorLineage
    from openlineage.client.event_v2 import InputDataset, OutputDataset
    from openlineage.client.facet_v2 import OutputDatasetFacet, output_statistics_output_dataset

    from airflow_predibase.lineage_facets import PredibaseBatchInferenceRunFacet

    inputs = [InputDataset(namespace=namespace, name=f"datasets/{facts.dataset}")]
    inputs += [InputDataset(namespace=namespace, name=adapter_name(m)) for m in facts.models]
    names = [location_name(o) for o in facts.outputs] or [
        (namespace, f"batch_inference_jobs/{facts.job_id}/results")
    ]
    statistics: dict[str, OutputDatasetFacet] = {
        "outputStatistics": output_statistics_output_dataset.OutputStatisticsOutputDatasetFacet(
            rowCount=facts.rows
        )
    }
    return OperatorLineage(
        inputs=inputs,
        outputs=[
            OutputDataset(namespace=n, name=name, outputFacets=statistics) for n, name in names
        ],
        run_facets={
            "predibase_batchInference": PredibaseBatchInferenceRunFacet(
                jobId=facts.job_id,
                baseModel=facts.base_model,
                models=list(facts.models),
                rows=facts.rows,
                succeeded=facts.succeeded,
                failed=facts.failed,
            )
        },
    )


def _deploy(facts: DeployFacts, namespace: str) -> Any:
    from airflow.providers.openlineage.extractors import OperatorLineage
    from openlineage.client.event_v2 import InputDataset, OutputDataset

    from airflow_predibase.lineage_facets import PredibaseDeploymentRunFacet

    return OperatorLineage(
        inputs=[InputDataset(namespace=namespace, name=adapter_name(a)) for a in facts.adapters],
        outputs=[OutputDataset(namespace=namespace, name=f"deployments/{facts.deployment}")],
        run_facets={
            "predibase_deployment": PredibaseDeploymentRunFacet(
                deployment=facts.deployment, baseModel=facts.base_model, action=facts.action
            )
        },
    )


def _delete(facts: DeleteFacts, namespace: str) -> Any:
    from airflow.providers.openlineage.extractors import OperatorLineage
    from openlineage.client.event_v2 import OutputDataset
    from openlineage.client.facet_v2 import lifecycle_state_change_dataset as lifecycle

    drop = lifecycle.LifecycleStateChangeDatasetFacet(
        lifecycleStateChange=lifecycle.LifecycleStateChange.DROP
    )
    return OperatorLineage(
        outputs=[
            OutputDataset(
                namespace=namespace,
                name=f"deployments/{facts.deployment}",
                facets={"lifecycleStateChange": drop},
            )
        ]
    )
