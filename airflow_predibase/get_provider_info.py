"""What the `apache_airflow_provider` entry point returns. Imports nothing heavy."""

from __future__ import annotations

from typing import Any

from airflow_predibase import __version__


def _connection_type() -> dict[str, Any]:
    """The `predibase` connection form: one URL field, help on every field, defaults shown.

    Airflow 3.3 gives its standard fields (host, port, password) a label and a placeholder
    but no help text, so their help is in the placeholder. The extra `base_url` of earlier
    versions is no longer in the form; the hook still reads it when Host is empty.
    """
    from airflow_predibase.client.settings import (
        DEFAULT_BASE_URL,
        DEFAULT_MAX_REQUESTS_PER_SECOND,
        DEFAULT_MAX_RETRIES,
        DEFAULT_SERVING_URL,
        DEFAULT_TIMEOUT,
    )

    return {
        "hook-class-name": "airflow_predibase.hooks.predibase.PredibaseHook",
        "connection-type": "predibase",
        "hook-name": "Predibase",
        "ui-field-behaviour": {
            "hidden-fields": ["schema", "login"],
            "relabeling": {
                "host": "Control plane URL",
                "port": "Port (optional)",
                "password": "API token (required)",
            },
            "placeholders": {
                "host": f"Empty: {DEFAULT_BASE_URL}. Emulator: http://127.0.0.1:8080/v2",
                "port": "e.g. 443; optional, but Airflow 3.3.2's list Test button needs it",
                "password": "pb_... (Predibase console: Settings > API Tokens)",
            },
        },
        "conn-fields": {
            "tenant_id": {
                "label": "Tenant ID",
                "schema": {"type": ["string", "null"]},
                "description": "Needed for deployments and serving: generate and chat "
                "calls, and the serving URL DeployOperator returns. Fine-tuning, datasets "
                "and batch jobs work without it. Settings > My Profile in the Predibase "
                "console.",
            },
            "serving_url": {
                "label": "Serving URL",
                "schema": {"type": ["string", "null"]},
                "description": f"Serving plane base. Empty: {DEFAULT_SERVING_URL}. "
                "For the local emulator, its own address (http://127.0.0.1:8080).",
            },
            "timeout": {
                "label": "Request timeout (s)",
                "schema": {"type": ["number", "null"], "default": DEFAULT_TIMEOUT},
                "description": f"Seconds allowed per request phase (connecting at most 10). "
                f"Default {DEFAULT_TIMEOUT:g}.",
            },
            "max_retries": {
                "label": "Max retries",
                "schema": {
                    "type": ["integer", "null"],
                    "default": DEFAULT_MAX_RETRIES,
                    "minimum": 0,
                },
                "description": "Retries after the first attempt (connection errors, "
                f"timeouts, 429, 502-504). Default {DEFAULT_MAX_RETRIES} "
                f"({DEFAULT_MAX_RETRIES + 1} attempts).",
            },
            "dialect": {
                "label": "API dialect",
                "schema": {
                    "type": ["string", "null"],
                    "default": "auto",
                    "enum": ["auto", "spec", "platform", None],
                },
                "description": "auto (default): ask the server once which API it speaks; "
                "spec: the seed OpenAPI spec's paths and bodies; platform: production "
                "Predibase's, as the official SDK sends them.",
            },
            "max_requests_per_second": {
                "label": "Request budget (requests/s)",
                # No schema default: empty means 20, or off for a loopback URL (the emulator).
                "schema": {"type": ["number", "null"], "minimum": 0},
                "description": "Requests per second shared by every task and trigger of "
                "this host and token in one process. Empty: "
                f"{DEFAULT_MAX_REQUESTS_PER_SECOND:g} (off for a loopback URL); 0 switches "
                "it off. Keep the sum over your triggerers and workers under the tenant's "
                "rate limit (docs/scaling.md).",
            },
        },
    }


def get_provider_info() -> dict[str, Any]:
    return {
        "package-name": "airflow-provider-predibase",
        "name": "Predibase",
        "description": "Fine-tune, deploy and batch-score LLM adapters on Predibase.",
        "versions": [__version__],
        "integrations": [
            {
                "integration-name": "Predibase",
                "external-doc-url": "https://docs.predibase.com",
                "tags": ["software"],
            }
        ],
        "operators": [
            {
                "integration-name": "Predibase",
                "python-modules": [
                    "airflow_predibase.operators.datasets",
                    "airflow_predibase.operators.finetuning",
                    "airflow_predibase.operators.deployments",
                    "airflow_predibase.operators.batch_inference",
                    "airflow_predibase.operators.generate",
                    "airflow_predibase.operators.evaluate",
                    "airflow_predibase.operators.promote",
                    "airflow_predibase.operators.retention",
                ],
            }
        ],
        "sensors": [
            {"integration-name": "Predibase", "python-modules": ["airflow_predibase.sensors.jobs"]}
        ],
        "triggers": [
            {
                "integration-name": "Predibase",
                "python-modules": [
                    "airflow_predibase.triggers.base",
                    "airflow_predibase.triggers.adapter_versions",
                ],
            }
        ],
        "extra-links": ["airflow_predibase.links.PredibaseConsoleLink"],
        "hooks": [
            {
                "integration-name": "Predibase",
                "python-modules": ["airflow_predibase.hooks.predibase"],
            }
        ],
        "connection-types": [_connection_type()],
        "config": {
            "predibase": {
                "description": "Process-wide settings of the Predibase provider. Connection "
                "settings (URL, token, request budget) are connection extras instead.",
                "options": {
                    "triggerer_gc_freeze": {
                        "description": "Opt-in, for a triggerer holding thousands of Predibase "
                        "waits: after a wait's first successful poll, gc.freeze() the heap (at "
                        "most every 10 s; gc.unfreeze() hourly), so that full garbage "
                        "collections stop walking every wait and stop pausing the event loop. "
                        "Changes the whole triggerer process. See docs/scaling.md.",
                        "version_added": "0.1.0",
                        "type": "boolean",
                        "example": "True",
                        "default": "False",
                    }
                },
            }
        },
    }
