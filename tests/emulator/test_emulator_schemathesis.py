"""The emulator never answers 5xx unless a fault asks it to: schemathesis over the control
plane, the serving plane (both from `openapi/predibase.yml`) and the control API (from
`emulator.admin_openapi`), valid and invalid requests, in-process, seeded and bounded."""

from __future__ import annotations

import copy
import time
from typing import Any

import hypothesis.strategies as st
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error

from airflow_predibase.emulator import ManualClock
from airflow_predibase.emulator.admin_openapi import admin_openapi
from airflow_predibase.emulator.app import EmulatorApp, create_app
from airflow_predibase.emulator.config import EmulatorConfig
from airflow_predibase.openapi import load_spec

#: Examples per operation and mode. About 45 operations: the module runs in ~30 s on 2 cores.
EXAMPLES = 40
TENANT = "emulator"
DEPLOYMENT = "qwen3-8b"  # a shared deployment: always ready, so serving routes really serve
SERVING_BASE = f"/{TENANT}/deployments/v2/llms/{DEPLOYMENT}"
_METHODS = ("get", "put", "post", "delete", "patch")


def _planes_spec() -> dict[str, Any]:
    """The contract with concrete paths: control under /v2, serving under one deployment."""
    spec = copy.deepcopy(load_spec())
    paths: dict[str, Any] = {}
    for path, item in spec["paths"].items():
        item.pop("servers", None)
        plane = next(item[m]["x-plane"] for m in _METHODS if m in item)
        for method in _METHODS:
            if method in item:
                item[method].pop("servers", None)
        paths[("/v2" if plane == "control" else SERVING_BASE) + path] = item
    spec["paths"] = paths
    spec["servers"] = [{"url": "http://localhost"}]
    return spec


@pytest.fixture(scope="module", params=["default", "spec"])
def app(request: pytest.FixtureRequest) -> EmulatorApp:
    """The seed's operations, on a server of each dialect that serves them (docs/platform.md)."""
    config = EmulatorConfig(profile="instant", tenant=TENANT, dialect=request.param)
    return create_app(config, clock=ManualClock())


def _operations(raw: dict[str, Any], app: EmulatorApp) -> list[Any]:
    schema = schemathesis.openapi.from_dict(raw)
    schema.app = app
    return [result.ok() for result in schema.get_all_operations()]  # type: ignore[union-attr]


def _fuzz(app: EmulatorApp, operation: Any) -> None:
    auth = {"Authorization": f"Bearer {app.config.token}"}
    strategy = st.one_of(
        operation.as_strategy(GenerationMode.POSITIVE),
        operation.as_strategy(GenerationMode.NEGATIVE),
    )

    @settings(
        max_examples=EXAMPLES,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=strategy)
    def run(case: Any) -> None:
        response = case.call(headers=auth)
        # A fuzzed POST /__emulator__/faults may script a 5xx or a drop: that is asked for.
        app.backend.faults.clear()
        case.validate_response(response, checks=[not_a_server_error])

    run()


def _ids(operations: list[Any]) -> list[str]:
    return [f"{op.method.upper()} {op.path}" for op in operations]


def test_no_server_errors_on_either_plane_or_the_control_api(app: EmulatorApp) -> None:
    started = time.monotonic()
    operations = _operations(_planes_spec(), app) + _operations(admin_openapi(), app)
    assert len(operations) > 40, _ids(operations)
    failures = []
    for operation in operations:
        try:
            _fuzz(app, operation)
        except Exception as error:  # every operation's failure, not just the first
            failures.append(f"{operation.method.upper()} {operation.path}: {error}")
        app.backend.reset()
    assert not failures, "\n\n".join(failures)
    assert time.monotonic() - started < 120  # the budget; ~30 s on the 2-core machine
