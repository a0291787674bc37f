"""The emulator in a process of its own, as the benchmarks run it (so their CPU figures are
the measured loop's alone), and the timing profile they share."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any


def profile(name: str, training: float) -> dict[str, Any]:
    """Everything near-instant except fine-tuning, which trains `training` seconds."""
    return {
        "name": name,
        "dataset_connecting": 0.01,
        "finetuning_queued": 0.01,
        "finetuning_training": training,
        "finetuning_stopping": 1.0,
        "deployment_pending": 1.0,
        "deployment_initializing": 1.0,
        "deployment_updating": 1.0,
        "deployment_deleting": 1.0,
        "deployment_cold_start": 0.0,
        "batch_queued": 1.0,
        "batch_running": 1.0,
    }


class Emulator:
    """`python -m airflow_predibase.emulator --token TOKEN *args` on a free port."""

    def __init__(self, token: str, *args: str) -> None:
        command = [sys.executable, "-m", "airflow_predibase.emulator", "--port", "0"]
        command += ["--token", token, *args]
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
        assert self.process.stdout is not None
        for line in self.process.stdout:
            if line.startswith("Predibase emulator listening on "):
                self.url = line.rsplit(" ", 1)[1].strip()
                break
        else:
            raise SystemExit("the emulator did not start")

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
