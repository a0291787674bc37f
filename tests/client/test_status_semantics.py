"""The status enums and the OpenAPI description agree on what "finished" means."""

from __future__ import annotations

import pytest

from airflow_predibase.client.models import status
from airflow_predibase.openapi import load_spec

ENUMS = {
    "FinetuningJobStatus": status.FinetuningJobStatus,
    "BatchInferenceJobStatus": status.BatchInferenceJobStatus,
    "DeploymentStatus": status.DeploymentStatus,
    "DatasetStatus": status.DatasetStatus,
    "AdapterVersionStatus": status.AdapterVersionStatus,
}


@pytest.mark.parametrize("name", sorted(ENUMS))
def test_enum_matches_the_spec(name: str):
    schema = load_spec()["components"]["schemas"][name]
    enum = ENUMS[name]
    assert sorted(schema["enum"]) == sorted(m.value for m in enum)
    assert sorted(schema["x-terminal-values"]) == sorted(m.value for m in enum if m.is_terminal)
    assert sorted(schema["x-success-values"]) == sorted(m.value for m in enum if m.is_success)
    assert sorted(schema["x-failure-values"]) == sorted(m.value for m in enum if m.is_failure)


def test_deployment_serving_values_match():
    schema = load_spec()["components"]["schemas"]["DeploymentStatus"]
    serving = [m.value for m in status.DeploymentStatus if m.is_serving]
    assert sorted(schema["x-serving-values"]) == sorted(serving)


def test_unknown_value_is_kept_and_not_terminal():
    value = status.FinetuningJobStatus("paused_for_maintenance")
    assert str(value) == "paused_for_maintenance"
    assert not value.is_terminal
    assert not value.is_known
