"""The provider in Airflow 3.3's React UI, in a real Chromium: what a user sees and clicks.

The expected labels, help texts, placeholders and hidden fields are read from
`get_provider_info()`, so these tests follow the declared connection form instead of copying
it. The run, the connection and the asset are checked through REST only where the browser
cannot see them (the stored connection's fields).
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import urlsplit

import pytest

from airflow_predibase.get_provider_info import get_provider_info
from airflow_predibase.kinds import FINETUNING_JOB
from airflow_predibase.links import PredibaseConsoleLink

pytestmark = pytest.mark.ui

DAG_ID = "ui_finetune"
CONN_ID = "ui_predibase"
#: Airflow's own connection fields (besides its description).
STANDARD_FIELDS = ("host", "schema", "login", "password", "port")
PROGRESS_LINE = re.compile(r"status=training step=\d+/\d+ epoch=[\d.]+ loss=\d+\.\d{4}")


def expect(target: Any) -> Any:
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect(target)


def connection_type() -> dict[str, Any]:
    (declared,) = [
        c for c in get_provider_info()["connection-types"] if c["connection-type"] == "predibase"
    ]
    return declared


def field_root(dialog: Any, input_name: str) -> Any:
    """The form row (label, input, help text) holding the input called `input_name`."""
    return dialog.locator("[data-part=root][role=group]").filter(
        has=dialog.page.locator(f"[name='{input_name}']")
    )


def label_text(row: Any) -> str:
    return " ".join(row.locator("label").first.inner_text().replace("*", " ").split())


def open_new_connection_form(page: Any) -> Any:
    page.goto("/connections")
    page.get_by_role("button", name="Add Connection").click()
    dialog = page.get_by_role("dialog")
    dialog.locator("input[name=connection_id]").fill(CONN_ID)
    dialog.get_by_role("combobox").fill(connection_type()["hook-name"])
    page.keyboard.press("Enter")
    expect(dialog.get_by_text("Standard Fields", exact=True)).to_be_visible()
    return dialog


def open_section(dialog: Any, title: str) -> None:
    """Expand one accordion section of the form (the form shows one at a time)."""
    trigger = dialog.get_by_role("button", name=title, exact=True)
    if trigger.get_attribute("aria-expanded") != "true":
        trigger.click()
    expect(trigger).to_have_attribute("aria-expanded", "true")


def test_the_connection_form_shows_the_declared_fields(page: Any) -> None:
    declared = connection_type()
    behaviour = declared.get("ui-field-behaviour", {})
    hidden = set(behaviour.get("hidden-fields", []))
    relabeling = behaviour.get("relabeling", {})
    placeholders = behaviour.get("placeholders", {})
    dialog = open_new_connection_form(page)

    # Airflow's own fields: hidden ones absent; the others show the declared label, and
    # their help as the placeholder (Airflow 3.3 gives them no help text).
    open_section(dialog, "Standard Fields")
    for name in STANDARD_FIELDS:
        field = dialog.locator(f"input[name='{name}']")
        if name in hidden:
            expect(field).to_have_count(0)
            continue
        expect(field).to_be_visible()
        assert label_text(field_root(dialog, name)) == relabeling.get(name, name.title()), name
        assert placeholders.get(name), f"{name} is shown without help"
        expect(field).to_have_attribute("placeholder", placeholders[name])
    # The token is typed into a password input, never shown as text.
    expect(dialog.locator("input[name=password]")).to_have_attribute("type", "password")

    # The provider's own fields: label, help text below, and the default filled in.
    open_section(dialog, "Extra Fields")
    for key, spec in declared.get("conn-fields", {}).items():
        row = field_root(dialog, f"element_{key}")
        field = row.locator(f"[name='element_{key}']")
        expect(row).to_be_visible()
        assert label_text(row) == spec["label"], key
        assert spec.get("description"), f"{key} is shown without help"
        expect(row.locator("[data-part=helper-text]")).to_have_text(spec["description"])
        if "default" in spec.get("schema", {}):
            default, shown = spec["schema"]["default"], field.input_value()
            if isinstance(default, (int, float)):
                assert float(shown) == float(default), key
            else:  # e.g. the `dialect` choice, "auto"
                assert shown == str(default), key
        if spec.get("sensitive"):
            expect(field).to_have_attribute("type", "password")


def test_a_connection_saved_in_the_form_is_stored_and_tested(page: Any, airflow_ui: Any) -> None:
    stack, emulator = airflow_ui
    port = urlsplit(emulator.url).port
    dialog = open_new_connection_form(page)

    open_section(dialog, "Standard Fields")
    dialog.locator("input[name=host]").fill(f"{emulator.url}/v2")
    # Optional for the provider, but Airflow 3.3.2's list Test button needs a stored port
    # (docs/connection.md, "Testing the connection").
    dialog.locator("input[name=port]").fill(str(port))
    dialog.locator("input[name=password]").fill(emulator.token)
    open_section(dialog, "Extra Fields")
    extras = {"tenant_id": "emulator", "serving_url": emulator.url}
    for key, value in extras.items():
        dialog.locator(f"[name='element_{key}']").fill(value)
    dialog.get_by_role("button", name="Save").click()

    row = page.get_by_role("row").filter(has_text=CONN_ID)
    expect(row).to_be_visible()
    expect(row).to_contain_text("predibase")
    stored = stack.rest("GET", f"/connections/{CONN_ID}")
    assert (stored["conn_type"], stored["host"], stored["port"]) == (
        "predibase",
        f"{emulator.url}/v2",
        port,
    )
    assert stored["password"] == "***"  # stored, and masked on the way out
    assert emulator.token not in json.dumps(stored)
    stored_extra = json.loads(stored["extra"] or "{}")
    assert {k: stored_extra.get(k) for k in extras} == extras

    # The list's Test button: the provider's test_connection, run by the api-server.
    with page.expect_response(lambda r: r.url.endswith("/api/v2/connections/test")) as tested:
        row.get_by_role("button", name="Test Connection").click()
    assert tested.value.ok, tested.value.text()
    result = tested.value.json()
    assert result["status"] is True, result
    assert emulator.url in result["message"], result
    expect(page.get_by_text("Test Connection Successful")).to_be_visible()
    assert emulator.token not in page.content()


def test_without_a_port_the_test_button_fails_as_documented(page: Any, airflow_ui: Any) -> None:
    """docs/connection.md: Airflow 3.3.2's list button posts `port: Number(null)`, i.e. 0, and
    the api-server refuses to reuse the stored token for "a different port"."""
    stack, emulator = airflow_ui
    conn_id = f"{CONN_ID}_no_port"
    stack.rest(
        "POST",
        "/connections",
        json={
            "connection_id": conn_id,
            "conn_type": "predibase",
            "host": f"{emulator.url}/v2",
            "password": emulator.token,
        },
    )
    page.goto("/connections")
    row = page.get_by_role("row").filter(has_text=conn_id)
    with page.expect_response(lambda r: r.url.endswith("/api/v2/connections/test")) as tested:
        row.get_by_role("button", name="Test Connection").click()
    assert tested.value.status == 400, tested.value.text()
    assert "differs from the stored connection" in tested.value.json()["detail"]
    assert json.loads(tested.value.request.post_data or "{}")["port"] == 0
    expect(page.get_by_text("Test Connection Failed")).to_be_visible()


def test_a_deferred_finetune_shows_progress_and_links_to_the_console(
    page: Any, airflow_ui: Any
) -> None:
    stack, emulator = airflow_ui
    run_id = stack.trigger(DAG_ID)
    stack.wait_for_task_state(DAG_ID, run_id, "finetune", {"deferred"}, timeout=90)

    # The log while the triggerer waits: the console URL at once, then progress lines.
    task_page = f"/dags/{DAG_ID}/runs/{run_id}/tasks/finetune"
    page.goto(task_page)
    expect(page.get_by_text("Deferred", exact=True).first).to_be_visible()
    expect(page.get_by_text(PROGRESS_LINE).first).to_be_visible(timeout=30_000)
    job_id = stack.xcom(DAG_ID, run_id, "finetune", "job_id")
    console = f"{emulator.url}/console{FINETUNING_JOB.console_path.format(id=job_id)}"
    expect(page.get_by_role("link", name=console).first).to_be_visible()
    if stack.task_instance(DAG_ID, run_id, "finetune")["state"] == "deferred":
        print(f"\n[ui] progress lines seen while deferred (run {run_id})")

    assert stack.wait_for_run(DAG_ID, run_id, timeout=120) == "success"
    page.reload()
    expect(page.get_by_text("Success", exact=True).first).to_be_visible()
    # The whole log, up to the resumed task's last line; several progress lines in it.
    expect(page.get_by_text(re.compile(r"adapter ui-router/\d+ is ready"))).to_be_visible()
    expect(page.get_by_text(PROGRESS_LINE).nth(1)).to_be_visible()
    assert emulator.token not in page.content()

    # The extra link, and the console page behind it.
    page.get_by_role("tab", name="Details").or_(page.get_by_role("link", name="Details")).click()
    link = page.get_by_role("link", name=PredibaseConsoleLink.name)
    expect(link).to_have_attribute("href", console)
    with page.context.expect_page() as opened:
        link.click()
    console_page = opened.value
    console_page.wait_for_load_state()
    assert console_page.url == console
    heading = console_page.get_by_role("heading", level=1)
    expect(heading).to_contain_text(job_id)
    expect(console_page.locator("body")).to_contain_text("completed")
    expect(console_page.get_by_role("heading", name="Training loss")).to_be_visible()
    assert emulator.token not in console_page.content()


def test_the_adapter_asset_event_is_shown(page: Any, airflow_ui: Any) -> None:
    stack, _ = airflow_ui
    runs = stack.rest("GET", f"/dags/{DAG_ID}/dagRuns")["dag_runs"]
    if not any(r["state"] == "success" for r in runs):
        pytest.fail("needs the successful run of the previous test", pytrace=False)
    adapter_events = stack.rest("GET", "/assets/events")["asset_events"]
    (event,) = [e for e in adapter_events if e["name"] == "predibase-adapters/ui-router"]
    adapter_id = event["extra"]["adapter_id"]

    page.goto("/assets")
    page.get_by_role("link", name="predibase-adapters/ui-router").click()
    events = page.get_by_test_id("card-list")
    expect(events.get_by_role("link", name=DAG_ID)).to_be_visible()
    extra = events.locator(".view-lines").first
    expect(extra).to_be_visible()
    expect(extra).to_contain_text(f'"adapter_id": "{adapter_id}"')
    assert adapter_id.startswith("ui-router/")
