"""The system-test scenarios, one module per theme; each declares itself with `@scenario`.

Importing this package registers every scenario in `SCENARIOS`: the themes in the order of
`THEMES`, the scenarios of a theme in the order of its module. That is the order of the
summary and of test_system.py's tests. A new scenario is a function in the module of its
theme (or in a new module, added to `THEMES`), with its DAG in ``tests/system/dags``.
"""

import importlib

from tests.system.scenarios.registry import SCENARIOS, Scenario, scenario, scenarios_for

THEMES = ("chain", "crashes", "user_actions", "limits", "token_leaks")
for _theme in THEMES:
    importlib.import_module(f"{__name__}.{_theme}")

__all__ = ["SCENARIOS", "THEMES", "Scenario", "scenario", "scenarios_for"]
