"""The demo console: the pages the provider's extra links open, over real HTTP, no token."""

from __future__ import annotations

import re
import subprocess
import sys

import httpx
import pytest
from emulator_testkit import Emu

from airflow_predibase.kinds import BATCH_INFERENCE_JOB, DATASET, DEPLOYMENT, FINETUNING_JOB
from airflow_predibase.links import console_base, console_url

ROWS = [{"prompt": f"question {i}", "completion": "billing"} for i in range(16)]


def page(emu: Emu, kind: object, key: str, status: int = 200) -> str:
    """The page the extra link of `kind`/`key` points at, fetched as a browser would."""
    url = console_url(console_base(emu.server.control_url), kind, key)  # type: ignore[arg-type]
    assert url.startswith(f"{emu.server.url}/console/")
    response = httpx.get(url)  # no Authorization header
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("text/html")
    assert "script-src" not in response.headers["content-security-policy"]
    assert emu.server.token not in response.text
    return response.text


def polyline_points(text: str) -> list[tuple[float, float]]:
    [points] = re.findall(r'<polyline[^>]* points="([^"]*)"', text)
    return [(float(x), float(y)) for x, y in (p.split(",") for p in points.split())]


def test_a_fine_tuning_job_page_draws_the_loss_curve_as_it_trains(emu: Emu) -> None:
    emu.dataset("tickets", ROWS)
    emu.repo("router")
    job = emu.job("router", "tickets", train_steps=40)
    text = page(emu, FINETUNING_JOB, job["id"])
    assert '<span class="status">queued</span>' in text
    assert "Training has not started" in text
    assert 'http-equiv="refresh"' in text  # still on its way: the page reloads itself

    emu.advance(0.5 + 1.5)  # queued, then half of the 3 s of training (`fast`)
    progress = emu.ok(emu.control.get(f"/finetuning/jobs/{job['id']}"))["progress"]
    text = page(emu, FINETUNING_JOB, job["id"])
    assert ">training<" in text
    assert f"{progress['step']} of 40" in text
    points = polyline_points(text)
    assert len(points) == progress["step"] == 20
    assert [y for _, y in points] == sorted(y for _, y in points)  # SVG y grows as loss falls

    emu.advance(5)
    done = emu.ok(emu.control.get(f"/finetuning/jobs/{job['id']}"))
    text = page(emu, FINETUNING_JOB, job["id"])
    assert '<span class="status ok">completed</span>' in text
    assert len(polyline_points(text)) == 40
    assert f"loss {done['progress']['train_loss']:.4f} at step 40" in text
    assert 'http-equiv="refresh"' not in text
    for status in ("queued", "training", "completed"):  # the timeline
        assert f"<th>{status}</th>" in text
    assert "<th>base_model</th><td>qwen3-8b</td>" in text  # the settings


def test_a_long_job_is_drawn_with_at_most_200_points(emu: Emu) -> None:
    emu.dataset("tickets", ROWS)
    emu.repo("router")
    job = emu.job("router", "tickets", train_steps=1000)
    emu.advance(10)
    assert len(polyline_points(page(emu, FINETUNING_JOB, job["id"]))) == 200


def test_user_text_is_escaped(emu: Emu) -> None:
    emu.dataset("tickets", ROWS)
    emu.repo("router")
    job = emu.job("router", "tickets", description='<script>alert("x")</script> & more')
    text = page(emu, FINETUNING_JOB, job["id"])
    assert "<script>" not in text
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; more" in text


def test_a_deleted_deployment_says_so(emu: Emu) -> None:
    emu.ok(emu.control.post("/deployments", json={"name": "router", "base_model": "qwen3-8b"}))
    assert ">pending<" in page(emu, DEPLOYMENT, "router")
    emu.advance(2)
    assert '<span class="status ok">ready</span>' in page(emu, DEPLOYMENT, "router")

    emu.ok(emu.control.delete("/deployments/router"))
    assert ">deleting<" in page(emu, DEPLOYMENT, "router")
    emu.advance(1)
    assert emu.control.get("/deployments/router").status_code == 404  # gone from the API
    text = page(emu, DEPLOYMENT, "router", status=410)
    assert ">deleted<" in text
    assert "This deployment was deleted" in text

    # Created again under the same name: its page is the new deployment's.
    emu.ok(emu.control.post("/deployments", json={"name": "router", "base_model": "qwen3-8b"}))
    assert ">pending<" in page(emu, DEPLOYMENT, "router")


def test_dataset_and_batch_job_pages(emu: Emu) -> None:
    emu.dataset("tickets", ROWS)
    text = page(emu, DATASET, "tickets")
    assert '<span class="status ok">connected</span>' in text
    assert "<th>row_count</th><td>16</td>" in text

    batch = emu.ok(
        emu.control.post(
            "/batch-inference/jobs", json={"base_model": "qwen3-8b", "dataset": "tickets"}
        )
    )
    emu.advance(5)
    status = emu.ok(emu.control.get(f"/batch-inference/jobs/{batch['id']}"))["status"]
    text = page(emu, BATCH_INFERENCE_JOB, batch["id"])
    assert f">{status}<" in text
    assert "<th>dataset</th><td>tickets</td>" in text


def test_unknown_resources_are_an_html_404(emu: Emu) -> None:
    text = page(emu, DEPLOYMENT, "never-made", status=404)
    assert "There is no deployment called never-made" in text
    assert httpx.get(f"{emu.server.url}/console/nothing/here").status_code == 404


def test_the_index_lists_every_resource(emu: Emu) -> None:
    emu.dataset("tickets", ROWS)
    text = httpx.get(f"{emu.server.url}/console").text
    assert '<a href="/console/data/datasets/tickets">tickets</a>' in text


def test_reading_a_page_never_moves_a_resource_on(emu: Emu) -> None:
    emu.admin.set_profile("instant")  # where every API GET moves a resource one state
    emu.ok(emu.control.post("/deployments", json={"name": "still", "base_model": "qwen3-8b"}))
    for _ in range(3):
        assert ">pending<" in page(emu, DEPLOYMENT, "still")


def test_faults_never_apply_to_the_console(emu: Emu) -> None:
    emu.dataset("tickets", ROWS)
    emu.admin.add_fault("status", status=503, count=5, path="*")
    page(emu, DATASET, "tickets")
    assert emu.control.get("/datasets/tickets").status_code == 503  # the API still gets it


@pytest.mark.parametrize(
    "expected", ["(default: 8080)", "(default: $PREDIBASE_EMULATOR_TOKEN, else pb_emulator_token)"]
)
def test_the_cli_help_shows_the_defaults(expected: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "airflow_predibase.emulator", "--help"],
        capture_output=True,
        text=True,
        check=True,
        env={"COLUMNS": "200", "PREDIBASE_EMULATOR_TOKEN": "pb_from_env_never_shown"},
    )
    assert expected in done.stdout
    assert "pb_from_env_never_shown" not in done.stdout
