"""The package registers itself with Airflow the way `airflow providers ...` reads it."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import jsonschema
import pytest

from airflow_predibase.get_provider_info import get_provider_info


def test_provider_info_is_valid_against_airflows_schema():
    import airflow

    schema_path = Path(airflow.__file__).parent / "provider_info.schema.json"
    schema = json.loads(schema_path.read_text())
    validator = jsonschema.validators.validator_for(schema)(schema)
    assert [e.message for e in validator.iter_errors(get_provider_info())] == []


def test_package_name_is_the_distribution_name():
    assert (
        get_provider_info()["package-name"]
        == metadata.metadata("airflow-provider-predibase")["Name"]
    )


def test_entry_point_points_at_get_provider_info():
    [entry] = [
        e
        for e in metadata.entry_points(group="apache_airflow_provider")
        if e.value.startswith("airflow_predibase")
    ]
    assert entry.load() is get_provider_info


def test_every_listed_module_and_class_imports():
    info = get_provider_info()
    modules = [
        m
        for key in ("operators", "sensors", "triggers", "hooks")
        for g in info[key]
        for m in g["python-modules"]
    ]
    for module in modules:
        importlib.import_module(module)
    for dotted in [*info["extra-links"], info["connection-types"][0]["hook-class-name"]]:
        module, _, name = dotted.rpartition(".")
        assert hasattr(importlib.import_module(module), name), dotted


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        ("list", "airflow-provider-predibase"),
        ("hooks", "airflow_predibase.hooks.predibase.PredibaseHook"),
        ("triggers", "airflow_predibase.triggers.base"),
        ("links", "airflow_predibase.links.PredibaseConsoleLink"),
    ],
)
def test_airflow_cli_lists_the_provider(command: str, expected: str):
    airflow = Path(sys.executable).with_name("airflow")
    done = subprocess.run(
        [str(airflow), "providers", command], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert expected in done.stdout
