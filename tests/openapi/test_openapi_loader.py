"""The packaged OpenAPI description and its small loader."""

from __future__ import annotations

import subprocess
import sys

import pytest

from airflow_predibase import openapi


def test_spec_ships_in_the_package_and_has_operations() -> None:
    ops = openapi.operations()
    assert len(ops) >= 30
    assert {op.plane for op in ops.values()} == {"control", "serving"}


def test_operation_unpacks_to_method_path_plane_op() -> None:
    method, path, plane, op = openapi.operation("getAdapterVersion")
    assert (method, path, plane) == ("GET", "/repos/{repoName}/version/{versionNumber}", "control")
    assert op["operationId"] == "getAdapterVersion"
    with pytest.raises(KeyError, match="noSuchThing"):
        openapi.operation("noSuchThing")


@pytest.mark.parametrize(
    ("method", "path", "plane", "expected", "params"),
    [
        ("PUT", "/datasets/upload", None, "completeDatasetUpload", {}),
        ("POST", "/datasets/upload", None, "createDatasetUpload", {}),
        ("GET", "/datasets/upload", None, "getDataset", {"datasetName": "upload"}),
        (
            "GET",
            "/repos/r/version/2",
            None,
            "getAdapterVersion",
            {"repoName": "r", "versionNumber": "2"},
        ),
        (
            "POST",
            "/batch-inference/jobs/b1/cancel",
            None,
            "cancelBatchInferenceJob",
            {"jobId": "b1"},
        ),
        ("POST", "/", "serving", "generateCompat", {}),
        ("post", "", "serving", "generateCompat", {}),
        ("GET", "/health", "serving", "health", {}),
        ("GET", "/health", "control", None, None),
        ("PATCH", "/models", None, None, None),
    ],
)
def test_match_operation(method, path, plane, expected, params) -> None:
    found = openapi.match_operation(method, path, plane)
    if expected is None:
        assert found is None
    else:
        assert found is not None
        assert (found[0].op["operationId"], found[1]) == (expected, params)


def test_nullable_becomes_json_schema() -> None:
    validator = openapi.validator_for("FinetuningJob")
    ok = {"id": "j", "status": "queued", "repo": None, "adapter_version": None, "progress": None}
    assert not list(validator.iter_errors(ok))
    # `base_model` is not nullable, so null is an error.
    assert list(validator.iter_errors(ok | {"base_model": None}))


def test_nullable_enum_and_refs() -> None:
    validator = openapi.validator_for("#/components/schemas/Dataset")
    assert not list(validator.iter_errors({"name": "d", "status": "connected", "format": None}))
    assert list(validator.iter_errors({"name": "d", "status": "connected", "format": "xml"}))


def test_validator_for_an_inline_schema_with_refs() -> None:
    validator = openapi.validator_for(
        {"type": "array", "items": {"$ref": "#/components/schemas/Repo"}, "nullable": True}
    )
    assert not list(validator.iter_errors(None))
    assert not list(validator.iter_errors([{"name": "r"}]))
    assert list(validator.iter_errors([{"description": "no name"}]))


def test_request_and_response_validators() -> None:
    assert openapi.request_validator("listModels") is None
    request = openapi.request_validator("createDeployment")
    assert list(request.iter_errors({"name": "d"}))  # base_model missing
    response = openapi.response_validator("listModels")
    assert not list(response.iter_errors({"data": [{"name": "m"}]}))
    assert openapi.response_validator("deleteRepo", "204") is None
    assert openapi.response_validator("listModels", "418") is None


def test_unknown_schema_is_a_clear_error() -> None:
    with pytest.raises(KeyError, match="Nope"):
        openapi.validator_for("Nope")


def test_importing_the_package_loads_neither_yaml_nor_jsonschema() -> None:
    code = (
        "import sys\n"
        "import airflow_predibase.openapi\n"
        "assert 'yaml' not in sys.modules and 'jsonschema' not in sys.modules\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
