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


# -- the connection form ---------------------------------------------------------------------


def test_connection_type_is_valid_against_the_provider_yaml_schema():
    # provider_info.schema.json leaves `connection-types` open; provider.yaml.schema.json
    # spells out `conn-fields` and `ui-field-behaviour`, with no unknown keys allowed.
    import airflow

    schema = json.loads((Path(airflow.__file__).parent / "provider.yaml.schema.json").read_text())
    definition = {**schema["properties"]["connection-types"], "definitions": schema["definitions"]}
    validator = jsonschema.validators.validator_for(schema)(definition)
    connection_types = get_provider_info()["connection-types"]
    assert [e.message for e in validator.iter_errors(connection_types)] == []


@pytest.fixture(scope="module")
def form() -> dict:
    """What Airflow's API server hands the UI to draw the `predibase` connection form."""
    from airflow import __version__ as airflow_version
    from airflow.api_fastapi.core_api.services.ui.connections import HookMetaService
    from packaging.version import Version

    if Version(airflow_version).release < (3, 2):
        pytest.skip(
            "Airflow 3.1 reads connection forms only from the hook's deprecated classmethods, "
            "not from provider info: it draws the generic form (docs/compatibility.md)"
        )

    [meta] = [m for m in HookMetaService.hook_meta_data() if m.connection_type == "predibase"]
    return meta.model_dump()


def test_the_form_has_one_url_field_for_the_control_plane(form: dict):
    standard, extra = form["standard_fields"], form["extra_fields"]
    assert standard["host"]["title"] == "Control plane URL"
    assert "base_url" not in extra
    assert not [name for name, f in extra.items() if "control" in f["schema"]["title"].lower()]


def test_every_visible_field_has_help(form: dict):
    standard, extra = form["standard_fields"], form["extra_fields"]
    # Airflow 3.3 gives standard fields a title and a placeholder, no help text.
    visible = [n for n in ("host", "port", "password") if not standard[n]["hidden"]]
    assert visible == ["host", "port", "password"]
    assert all(standard[n]["placeholder"] for n in visible)
    assert standard["url_schema"]["hidden"]
    assert standard["login"]["hidden"]
    assert all(field["description"] for field in extra.values())


def test_the_token_is_marked_required_and_the_defaults_are_shown(form: dict):
    from airflow_predibase.client.settings import DEFAULT_MAX_RETRIES, DEFAULT_TIMEOUT

    standard, extra = form["standard_fields"], form["extra_fields"]
    assert standard["password"]["title"] == "API token (required)"
    assert standard["password"]["placeholder"].startswith("pb_")
    assert extra["timeout"]["value"] == DEFAULT_TIMEOUT == 30
    assert extra["max_retries"]["value"] == DEFAULT_MAX_RETRIES == 4
    assert "Default 30." in extra["timeout"]["description"]
    assert "Default 4 (5 attempts)" in extra["max_retries"]["description"]


def test_the_tenant_says_what_needs_it(form: dict):
    description = form["extra_fields"]["tenant_id"]["description"]
    assert description.startswith("Needed for deployments and serving")
    assert "Settings > My Profile" in description
