"""The custom OpenLineage run facets the Predibase operators report (docs/lineage.md).

Imports openlineage at the top, so only `airflow_predibase.lineage` imports it, and only
when the OpenLineage listener asks a finished task for its lineage. Field names are
camelCase, as in OpenLineage's own facets.
"""

from __future__ import annotations

from typing import Any

from attrs import define
from openlineage.client.facet_v2 import RunFacet


@define
class PredibaseFinetuningRunFacet(RunFacet):
    """The fine-tuning job that produced an adapter version, and what it was trained with.

    `settings` holds the job request as sent (base model, dataset, repository, adapter type,
    task and every hyperparameter given), with the platform's own view of the job where it
    reports one; never the description (it carries the idempotency marker) or a credential.
    """

    jobId: str
    adapterId: str
    settings: dict[str, Any]


@define
class PredibaseBatchInferenceRunFacet(RunFacet):
    """A batch inference job: what scored it and how its rows came out."""

    jobId: str
    baseModel: str | None
    models: list[str]
    rows: int
    succeeded: int
    failed: int


@define
class PredibaseDeploymentRunFacet(RunFacet):
    """A deployment as `DeployOperator` left it, and what it did to get there."""

    deployment: str
    baseModel: str | None
    action: str | None
