"""What the `apache_airflow_provider` entry point returns. Imports nothing heavy."""

from __future__ import annotations

from typing import Any

from airflow_predibase import __version__


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
                ],
            }
        ],
        "sensors": [
            {"integration-name": "Predibase", "python-modules": ["airflow_predibase.sensors.jobs"]}
        ],
        "triggers": [
            {"integration-name": "Predibase", "python-modules": ["airflow_predibase.triggers.base"]}
        ],
        "extra-links": ["airflow_predibase.links.PredibaseConsoleLink"],
        "hooks": [
            {
                "integration-name": "Predibase",
                "python-modules": ["airflow_predibase.hooks.predibase"],
            }
        ],
        "connection-types": [
            {
                "hook-class-name": "airflow_predibase.hooks.predibase.PredibaseHook",
                "connection-type": "predibase",
                "hook-name": "Predibase",
                "ui-field-behaviour": {
                    "hidden-fields": ["schema", "port", "login"],
                    "relabeling": {"host": "Control plane URL", "password": "API token"},
                    "placeholders": {
                        "host": "https://api.app.predibase.com/v2 (default)",
                        "password": "pb_...",
                    },
                },
                "conn-fields": {
                    "tenant_id": {
                        "label": "Tenant ID",
                        "schema": {"type": ["string", "null"]},
                        "description": "Settings > My Profile in the Predibase console.",
                    },
                    "serving_url": {
                        "label": "Serving URL",
                        "schema": {"type": ["string", "null"]},
                        "description": "Default https://serving.app.predibase.com",
                    },
                    "base_url": {
                        "label": "Control plane URL (full)",
                        "schema": {"type": ["string", "null"]},
                        "description": "Overrides Host, e.g. http://127.0.0.1:8080/v2 "
                        "for the local emulator.",
                    },
                    "timeout": {
                        "label": "Request timeout (s)",
                        "schema": {"type": ["number", "null"]},
                    },
                    "max_retries": {
                        "label": "Max retries",
                        "schema": {"type": ["integer", "null"]},
                    },
                },
            }
        ],
    }
