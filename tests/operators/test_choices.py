"""Operators keep their own copies of the valid choices (importing the pydantic models at
DAG-parse time would cost import time); these must equal the models' definitions."""

from __future__ import annotations

from airflow_predibase.client.models import finetuning as finetuning_models
from airflow_predibase.client.models.deployments import QUANTIZATIONS as MODEL_QUANTIZATIONS
from airflow_predibase.operators import datasets, deployments, finetuning


def test_finetuning_choices_match_the_models():
    assert finetuning.ADAPTER_TYPES == finetuning_models.ADAPTER_TYPES
    assert finetuning.TASKS == finetuning_models.FINETUNING_TASKS


def test_dataset_tasks_are_the_finetuning_tasks_plus_batch():
    assert (*finetuning_models.FINETUNING_TASKS, "batch") == datasets.TASKS
    assert set(finetuning_models.TASK_COLUMNS) == set(finetuning_models.FINETUNING_TASKS)


def test_quantizations_match_the_models():
    assert deployments.QUANTIZATIONS == MODEL_QUANTIZATIONS
