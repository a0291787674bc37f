"""The browser test's fixtures: Debian's Chromium driven by Playwright, one real Airflow stack
(api-server, scheduler, dag-processor, triggerer) with an emulator, and failure artifacts.

`make test-ui` runs these (docs/ui_test.md); `make test` leaves them out (``--ignore=tests/ui``).
Without Chromium or Playwright they are skipped with the reason, unless
``PREDIBASE_UI_REQUIRED=1`` (set by `make test-ui`), which makes that a failure instead.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.system.harness import AirflowStack, EmulatorProcess, StackSettings, running_stack

ROOT = Path(__file__).resolve().parents[2]
DAGS = Path(__file__).resolve().parent / "dags"
#: Screenshots and page HTML of failed tests (gitignored).
ARTIFACTS = Path(os.environ.get("PREDIBASE_UI_ARTIFACTS", ROOT / "test-artifacts" / "ui"))

#: Long enough training for several progress polls (every 3 s) while the task is deferred.
UI_TIMING = {
    "name": "ui",
    "dataset_connecting": 0.3,
    "finetuning_queued": 1.0,
    "finetuning_training": 24.0,
    "finetuning_stopping": 0.5,
    "deployment_pending": 0.5,
    "deployment_initializing": 1.0,
    "deployment_updating": 1.0,
    "deployment_deleting": 0.5,
    "deployment_cold_start": 0.5,
    "batch_queued": 0.3,
    "batch_running": 1.2,
}


def pytest_configure(config: pytest.Config) -> None:
    # Also declared in pyproject's markers; registered here so the directory stands alone.
    config.addinivalue_line("markers", "ui: real-browser tests of the Airflow UI (make test-ui)")


def _unavailable(reason: str) -> None:
    if os.environ.get("PREDIBASE_UI_REQUIRED") == "1":
        pytest.fail(f"browser test required but {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def chromium_path() -> str:
    path = os.environ.get("PREDIBASE_UI_CHROMIUM") or shutil.which("chromium")
    if path is None:
        _unavailable("no chromium on PATH (apt-get install chromium, or run make test-ui)")
    return str(path)


@pytest.fixture(scope="session")
def browser(chromium_path: str) -> Iterator[Any]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("playwright is not installed (pip install playwright)")
    with sync_playwright() as playwright:
        # Root (CI) needs --no-sandbox. Playwright's own driver talks CDP to Debian's Chromium.
        launched = playwright.chromium.launch(executable_path=chromium_path, args=["--no-sandbox"])
        print(f"\n[ui] {chromium_path}: Chromium {launched.version}")
        yield launched
        launched.close()


@pytest.fixture(scope="session")
def airflow_ui(browser: Any) -> Iterator[tuple[AirflowStack, EmulatorProcess]]:
    """One stack for the whole browser suite, its emulator holding the ``tickets`` dataset."""
    with running_stack(
        DAGS,
        emulators={"predibase_default": {"timing": UI_TIMING}},
        # The row's Test button is only shown, and the endpoint only answers, when enabled.
        settings=StackSettings(extra_env={"AIRFLOW__CORE__TEST_CONNECTION": "Enabled"}),
        keep_workdir=bool(os.environ.get("PREDIBASE_SYSTEM_KEEP")),
    ) as (stack, emulators):
        emulator = emulators["predibase_default"]
        client = emulator.client()
        client.upload_dataset("tickets", b'{"prompt": "a", "completion": "b"}\n' * 10, "t.jsonl")
        stack.wait_for_dags(["ui_finetune"])
        yield stack, emulator


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    setattr(item, f"ui_report_{report.when}", report)
    return report


@pytest.fixture
def page(request: pytest.FixtureRequest, browser: Any, airflow_ui: Any) -> Iterator[Any]:
    """A fresh browser context on the stack's UI; on failure its pages are saved to ARTIFACTS."""
    stack, _ = airflow_ui
    context = browser.new_context(base_url=stack.api_url, viewport={"width": 1400, "height": 1000})
    context.set_default_timeout(20_000)
    tab = context.new_page()
    yield tab
    report = getattr(request.node, "ui_report_call", None)
    if report is not None and report.failed:
        folder = ARTIFACTS / re.sub(r"[^\w.-]+", "_", request.node.name)
        folder.mkdir(parents=True, exist_ok=True)
        for number, opened in enumerate(context.pages):
            try:
                opened.screenshot(path=str(folder / f"page{number}.png"), full_page=True)
                (folder / f"page{number}.html").write_text(opened.content())
                (folder / f"page{number}.url").write_text(opened.url + "\n")
            except Exception as error:  # a crashed page must not hide the test's own failure
                (folder / f"page{number}.error").write_text(repr(error))
        print(f"\n[ui] failure artifacts of {request.node.name}: {folder}")
    context.close()
