"""State files: an emulator restarted on the same file carries on where it stopped,
whether started in Python or from the command line."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import IO

import httpx
import pytest
from emulator_testkit import BASE_MODEL, Emu, sentiment_rows

from airflow_predibase.emulator import EmulatorServer, ManualClock


def test_a_restart_on_the_same_state_file_loses_nothing(tmp_path: Path) -> None:
    clock = ManualClock()
    state = tmp_path / "emulator.db"
    with EmulatorServer(clock=clock, state_file=state) as first:
        emu = Emu(first, clock)
        emu.dataset("reviews", sentiment_rows())
        emu.repo("sentiment")
        job = emu.job("sentiment", "reviews")
        emu.ok(emu.control.post("/deployments", json={"name": "dep", "base_model": BASE_MODEL}))
        emu.advance(1.5)
        before = emu.ok(emu.control.get(f"/finetuning/jobs/{job['id']}"))
        assert before["status"] == "training"
        emu.close()

    with EmulatorServer(clock=clock, state_file=state) as second:
        emu = Emu(second, clock)
        assert emu.ok(emu.control.get(f"/finetuning/jobs/{job['id']}")) == before
        emu.advance(10)  # the lifecycle continues from the stored timestamps
        after = emu.ok(emu.control.get(f"/finetuning/jobs/{job['id']}"))
        assert (after["status"], after["adapter_version"]) == ("completed", 1)
        assert emu.ok(emu.control.get("/deployments/dep"))["status"] == "ready"
        # The adapter's training data came back from the file too.
        answer = emu.serving("dep").post(
            "/generate",
            json={
                "inputs": "Review: loved it, great. Sentiment:",
                "parameters": {"adapter_id": "sentiment/1"},
            },
        )
        assert emu.ok(answer)["generated_text"] == "positive"
        emu.close()


def _start(args: list[str], env: dict[str, str]) -> tuple[subprocess.Popen[str], dict[str, str]]:
    """Start the CLI and read its banner (the lines up to the connection)."""
    process = subprocess.Popen(
        [sys.executable, "-m", "airflow_predibase.emulator", "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, **env},
    )
    stdout: IO[str] | None = process.stdout
    assert stdout is not None
    banner: dict[str, str] = {}
    for line in stdout:
        if line.startswith("Predibase emulator listening on "):
            banner["url"] = line.split(" on ", 1)[1].strip()
        elif ":" in line and line.startswith("  "):
            key, value = line.strip().split(":", 1)
            banner[key] = value.strip()
        if line.strip().startswith("AIRFLOW_CONN_PREDIBASE_DEFAULT"):
            break
    else:
        process.kill()
        pytest.fail(f"the emulator exited early with {process.wait()}")
    return process, banner


def _stop(process: subprocess.Popen[str]) -> int:
    process.send_signal(signal.SIGINT)
    try:
        return process.wait(timeout=15)
    finally:
        if process.poll() is None:
            process.kill()


def test_the_cli_serves_prints_its_settings_and_restarts_from_its_state_file(
    tmp_path: Path,
) -> None:
    env = {"PREDIBASE_EMULATOR_TOKEN": "pb_from_env", "PREDIBASE_EMULATOR_TENANT": "acme"}
    state = tmp_path / "cli.db"
    process, banner = _start(["--profile", "instant", "--state-file", str(state)], env)
    try:
        assert (banner["token"], banner["tenant"], banner["profile"]) == (
            "pb_from_env",
            "acme",
            "instant",
        )
        url = banner["url"]
        assert banner["control plane"] == f"{url}/v2"
        assert httpx.get(f"{url}/__emulator__/health").json() == {"status": "ok"}
        auth = {"Authorization": "Bearer pb_from_env"}
        assert httpx.get(f"{url}/v2/models").status_code == 401
        assert httpx.post(f"{url}/v2/repos", json={"name": "kept"}, headers=auth).status_code == 200
        created = httpx.post(
            f"{url}/v2/deployments", json={"name": "dep", "base_model": BASE_MODEL}, headers=auth
        ).json()
        assert created["status"] == "pending"
        first = httpx.get(f"{url}/v2/deployments/dep", headers=auth).json()["status"]
        assert first == "initializing"
        served = httpx.post(
            f"{url}/acme/deployments/v2/llms/{BASE_MODEL}/generate",
            json={"inputs": "hi"},
            headers=auth,
        )
        assert served.status_code == 200
    finally:
        assert _stop(process) == 0

    process, banner = _start(
        ["--profile", "instant", "--state-file", str(state), "--token", "pb_flag"], env
    )
    try:
        url, auth = banner["url"], {"Authorization": "Bearer pb_flag"}  # the flag beats the env
        assert httpx.get(f"{url}/v2/repos/kept", headers=auth).status_code == 200
        # Read again after the restart: the lifecycle resumes where it was.
        assert httpx.get(f"{url}/v2/deployments/dep", headers=auth).json()["status"] == "ready"
    finally:
        assert _stop(process) == 0


def test_the_cli_refuses_a_bad_tenant() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "airflow_predibase.emulator", "--tenant", "no/slashes"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert "tenant" in result.stderr


def test_the_cli_speaks_the_dialect_it_is_given() -> None:
    process, banner = _start(["--dialect", "spec"], {})
    try:
        assert banner["dialect"] == "spec"
        auth = {"Authorization": f"Bearer {banner['token']}"}
        answer = httpx.get(f"{banner['url']}/v1/users/current", headers=auth)
        assert answer.status_code == 400
        assert "speaks the 'spec' dialect" in answer.json()["error"]
    finally:
        assert _stop(process) == 0
