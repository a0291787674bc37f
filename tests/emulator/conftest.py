"""Shared set-up for the emulator tests: one loopback server per module on a manual clock,
reset before each test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from emulator_testkit import Emu

from airflow_predibase.emulator import EmulatorServer, ManualClock


@pytest.fixture(scope="module")
def manual_server() -> Iterator[tuple[EmulatorServer, ManualClock]]:
    clock = ManualClock()
    with EmulatorServer(clock=clock, profile="fast") as server:
        yield server, clock


@pytest.fixture
def emu(manual_server: tuple[EmulatorServer, ManualClock]) -> Iterator[Emu]:
    server, clock = manual_server
    server.reset()
    helper = Emu(server, clock)
    yield helper
    helper.close()
