"""Links to the Predibase console, shown on the task in the Airflow UI.

Airflow 3 computes extra links on the worker when a task segment ends and stores them in
XCom, so the operator pushes the console URL as soon as the job exists (and logs it too).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, urlsplit

from airflow.sdk import BaseOperatorLink

from airflow_predibase.kinds import ResourceKind

DEFAULT_CONSOLE_URL = "https://app.predibase.com"
XCOM_CONSOLE_URL = "predibase_console_url"


def console_base(control_url: str, console_url: str | None = None) -> str:
    """The console for a control-plane URL: the public console, or the same origin elsewhere."""
    if console_url:
        return console_url.rstrip("/")
    parts = urlsplit(control_url)
    if parts.hostname and parts.hostname.endswith("predibase.com"):
        return DEFAULT_CONSOLE_URL
    return f"{parts.scheme}://{parts.netloc}/console"


def console_url(base: str, kind: ResourceKind, resource_id: str) -> str:
    """The console page of one resource of `kind`."""
    return base + kind.console_path.format(id=quote(resource_id, safe="/"))


class PredibaseConsoleLink(BaseOperatorLink):
    """ "Predibase console": the job, deployment or dataset this task worked on."""

    name = "Predibase console"

    def get_link(self, operator: Any, *, ti_key: Any) -> str:
        # Airflow asks when a task segment ends, on the worker that ran it, with the operator
        # that ran: the URL it published is on it. Reading XCom instead would log an error
        # for every try that failed before its job existed.
        url = getattr(operator, "_console_url", None)
        return url if isinstance(url, str) else ""
