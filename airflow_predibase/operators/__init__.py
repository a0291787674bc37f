"""Predibase operators. Each is imported on first use, so DAG parsing pays only for what
a DAG file uses."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow_predibase.operators._settings import AirflowSecret
    from airflow_predibase.operators.batch_inference import BatchInferenceOperator
    from airflow_predibase.operators.datasets import CreateDatasetOperator
    from airflow_predibase.operators.deployments import DeleteDeploymentOperator, DeployOperator
    from airflow_predibase.operators.evaluate import EvaluateAdapterOperator
    from airflow_predibase.operators.finetuning import FinetuneOperator, PredibaseCostGuardFailed
    from airflow_predibase.operators.generate import PredibaseGenerateOperator
    from airflow_predibase.operators.promote import PromoteAdapterOperator
    from airflow_predibase.operators.retention import ArchiveAdapterVersionsOperator

_MODULES = {
    "AirflowSecret": "_settings",
    "BatchInferenceOperator": "batch_inference",
    "CreateDatasetOperator": "datasets",
    "DeleteDeploymentOperator": "deployments",
    "DeployOperator": "deployments",
    "FinetuneOperator": "finetuning",
    "PredibaseCostGuardFailed": "finetuning",
    "EvaluateAdapterOperator": "evaluate",
    "PromoteAdapterOperator": "promote",
    "ArchiveAdapterVersionsOperator": "retention",
    "PredibaseGenerateOperator": "generate",
}

__all__ = [
    "AirflowSecret",
    "ArchiveAdapterVersionsOperator",
    "BatchInferenceOperator",
    "CreateDatasetOperator",
    "DeleteDeploymentOperator",
    "DeployOperator",
    "EvaluateAdapterOperator",
    "FinetuneOperator",
    "PredibaseCostGuardFailed",
    "PredibaseGenerateOperator",
    "PromoteAdapterOperator",
]


def __getattr__(name: str) -> Any:
    module = _MODULES.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)
