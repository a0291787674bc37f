"""The worker-side wait (blocking mode): the sync twin of the trigger's `run()`."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from airflow_predibase.client.errors import PredibaseError
from airflow_predibase.waiting.events import JobEvent
from airflow_predibase.waiting.waiter import Waiter


def wait_blocking(
    client: Any,
    waiter: Waiter,
    *,
    log: Any,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.time,
) -> JobEvent:
    """Poll with `client` (sync) under `waiter`'s rules until the wait ends; the event."""
    step: JobEvent | float = 0.0
    while not isinstance(step, JobEvent):
        sleep(step)
        try:
            resource = waiter.check_identity(waiter.kind.get(client, waiter.resource_id))
        except PredibaseError as error:
            log.warning("poll of %s failed: %s", waiter.resource_id, error)
            step = waiter.on_error(error, clock())
            continue
        line = waiter.progress_line(resource)
        if line:
            log.info(line)
        step = waiter.on_resource(resource, clock())
    return step
