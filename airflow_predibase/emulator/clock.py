"""The emulator's sense of time, injected so that tests never have to sleep.

Timestamps are seconds since the epoch, so a state file written by one run still makes
sense to the next. `SystemClock` anchors the wall clock once and then moves with the
monotonic clock, so a wall-clock jump (NTP, suspend) cannot move a lifecycle backwards.
"""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Protocol


class Clock(Protocol):
    """What the emulator asks of a clock."""

    def now(self) -> float:
        """Seconds since the epoch."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Wait `seconds` of this clock's time (used for cold starts)."""
        ...

    def advance(self, seconds: float) -> None:
        """Skip `seconds` ahead (the control API's clock route)."""
        ...

    def rewind(self) -> None:
        """Undo every skip (the control API's reset): back to where this clock started."""
        ...


class SystemClock:
    """Real time, plus whatever the control API has skipped ahead."""

    def __init__(self) -> None:
        self._wall0 = time.time()
        self._mono0 = time.monotonic()
        self._offset = 0.0
        self._lock = threading.Lock()

    def now(self) -> float:
        return self._wall0 + (time.monotonic() - self._mono0) + self._offset

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._offset += seconds

    def rewind(self) -> None:
        with self._lock:
            self._offset = 0.0


class ManualClock:
    """Time that moves only when told to. `sleep` advances it instead of waiting.

    It is shared between a test's thread and the server's thread, hence the lock.
    """

    #: 2026-01-01T00:00:00Z: a fixed start keeps timestamps reproducible across runs.
    DEFAULT_START = 1_767_225_600.0

    def __init__(self, start: float = DEFAULT_START) -> None:
        self._start = start
        self._now = start
        self._lock = threading.Lock()

    def now(self) -> float:
        with self._lock:
            return self._now

    async def sleep(self, seconds: float) -> None:
        self.advance(max(0.0, seconds))
        await asyncio.sleep(0)

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError(f"time only moves forward, got {seconds}")
        with self._lock:
            self._now += seconds

    def rewind(self) -> None:
        with self._lock:
            self._now = self._start
