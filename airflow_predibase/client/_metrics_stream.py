"""Production's training metrics: the websocket `/v2/finetuning/jobs/{uuid}/metrics/stream`.

The official SDK reads validation loss, the best checkpoint and tokens from this stream only
(`FinetuningJobs._stream_model_metrics`): no HTTP route serves them. A new connection first
replays every checkpoint reached so far, and the stream ends with a message whose
`meta.is_completed` is true, so reading a *finished* job's stream is one short exchange.

It needs the `websockets` package (the SDK's own dependency; Airflow installs it with
uvicorn). Without it, or against a server without the route, the reader returns None and the
caller does without the metrics. Reads are bounded by a wall-clock budget.
"""

from __future__ import annotations

import json
import time
from typing import Any

from airflow_predibase.client._base import USER_AGENT, ApiRequest, seg, url_for
from airflow_predibase.client.models.training import TrainingMetrics
from airflow_predibase.client.settings import ClientSettings

#: At most this many messages are read from one stream.
MAX_MESSAGES = 100_000


def metrics_url(settings: ClientSettings, job_id: str) -> str:
    url = url_for(settings, ApiRequest("GET", f"/finetuning/jobs/{seg(job_id)}/metrics/stream"))
    return "ws" + url[len("http") :] if url.startswith("http") else url


def read_metrics(
    settings: ClientSettings, job_id: str, *, budget: float = 30.0
) -> list[TrainingMetrics] | None:
    """Every message of a finished job's stream, oldest first; None when it cannot be read.

    Raises nothing on a refused or broken stream (what was read is returned): the metrics
    are a report, not a result a task may fail on.
    """
    try:
        from websockets.exceptions import WebSocketException
        from websockets.sync.client import connect
    except ImportError:
        return None
    deadline = time.monotonic() + budget
    messages: list[TrainingMetrics] = []
    headers = {"Authorization": f"Bearer {settings.token}", "User-Agent": USER_AGENT}
    try:
        with connect(
            metrics_url(settings, job_id),
            additional_headers=headers,
            open_timeout=min(budget, 10.0),
            close_timeout=1.0,
        ) as socket:
            while len(messages) < MAX_MESSAGES:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                raw: Any = socket.recv(timeout=left)
                try:
                    message = TrainingMetrics.from_message(json.loads(raw))
                except (ValueError, TypeError):
                    continue
                messages.append(message)
                if message.is_completed:
                    break
    except (OSError, TimeoutError, WebSocketException):
        return messages or None
    return messages
