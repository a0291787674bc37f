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
    from airflow_predibase.operators.finetuning import FinetuneOperator

_MODULES = {
    "AirflowSecret": "_settings",
    "BatchInferenceOperator": "batch_inference",
    "CreateDatasetOperator": "datasets",
    "DeleteDeploymentOperator": "deployments",
    "DeployOperator": "deployments",
    "FinetuneOperator": "finetuning",
}

__all__ = [
    "AirflowSecret",
    "BatchInferenceOperator",
    "CreateDatasetOperator",
    "DeleteDeploymentOperator",
    "DeployOperator",
    "FinetuneOperator",
]


def __getattr__(name: str) -> Any:
    module = _MODULES.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)
