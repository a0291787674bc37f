"""Typed Predibase client, sync and async. It imports nothing from Airflow.

    from airflow_predibase.client import ClientSettings, PredibaseClient

    with PredibaseClient(ClientSettings(token="pb_...", tenant_id="abc123")) as client:
        jobs = client.list_finetuning_jobs()

Names are imported on first use, so `from airflow_predibase.client.errors import ...` or
`import airflow_predibase.client` stays cheap for modules that only need a name or two.
See docs/client.md for the method reference, the error tree and the retry policy.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow_predibase.client import errors
    from airflow_predibase.client._async import AsyncPredibaseClient
    from airflow_predibase.client._retry import RetryPolicy
    from airflow_predibase.client._sync import PredibaseClient
    from airflow_predibase.client.errors import (
        APIConnectionError,
        APIStatusError,
        APITimeoutError,
        AuthenticationError,
        BadRequestError,
        ConflictError,
        NotFoundError,
        OutcomeUnknownError,
        PermissionDeniedError,
        PredibaseError,
        RateLimitError,
        ResponseValidationError,
        ServerError,
        StreamError,
    )
    from airflow_predibase.client.settings import ClientSettings

_ERRORS = "airflow_predibase.client.errors"
_ERROR_NAMES = [
    "PredibaseError",
    "APIConnectionError",
    "APITimeoutError",
    "OutcomeUnknownError",
    "StreamError",
    "ResponseValidationError",
    "APIStatusError",
    "BadRequestError",
    "AuthenticationError",
    "PermissionDeniedError",
    "NotFoundError",
    "ConflictError",
    "RateLimitError",
    "ServerError",
]
_WHERE = {
    "PredibaseClient": "airflow_predibase.client._sync",
    "AsyncPredibaseClient": "airflow_predibase.client._async",
    "RetryPolicy": "airflow_predibase.client._retry",
    "ClientSettings": "airflow_predibase.client.settings",
    **dict.fromkeys(_ERROR_NAMES, _ERRORS),
}

__all__ = [
    "APIConnectionError",
    "APIStatusError",
    "APITimeoutError",
    "AsyncPredibaseClient",
    "AuthenticationError",
    "BadRequestError",
    "ClientSettings",
    "ConflictError",
    "NotFoundError",
    "OutcomeUnknownError",
    "PermissionDeniedError",
    "PredibaseClient",
    "PredibaseError",
    "RateLimitError",
    "ResponseValidationError",
    "RetryPolicy",
    "ServerError",
    "StreamError",
    "errors",
]


def __getattr__(name: str) -> Any:
    if name == "errors":
        return importlib.import_module(_ERRORS)
    if name in _WHERE:
        return getattr(importlib.import_module(_WHERE[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
