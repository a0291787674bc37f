"""Waiting for something another process does, and the error every harness module raises."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import httpx


class StackError(RuntimeError):
    """Something the harness started did not come up, with the tail of its log."""


#: Set to make every `wait_until` give up at once (Ctrl-C, or a test that must stop).
ABORT = threading.Event()


def wait_until(
    predicate: Callable[[], Any],
    timeout: float,
    what: str,
    interval: float = 0.25,
    *,
    alive: Callable[[], None] | None = None,
) -> Any:
    """Poll `predicate` until it returns something truthy; TimeoutError naming `what`.

    `alive` (e.g. `AirflowStack.check_alive`) is called first on every round, so that a
    crashed component fails the wait at once instead of at its timeout.
    """
    deadline = time.monotonic() + timeout
    last_error: BaseException | None = None
    while True:
        if ABORT.is_set():
            raise StackError(f"aborted while waiting for {what}")
        if alive is not None:
            alive()
        try:
            value = predicate()
        except (httpx.HTTPError, OSError) as error:  # a component restarting, a locked DB
            value, last_error = None, error
        if value:
            return value
        if time.monotonic() >= deadline:
            detail = f" (last error: {last_error})" if last_error else ""
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}{detail}")
        time.sleep(interval)
