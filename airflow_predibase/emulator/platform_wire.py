"""Production's shapes (as the official SDK 2025.10.3 reads them), built from the seed views.

Each function takes what a resource's `view` returns (the seed shape) and the stored
document, and returns the object production sends: `uuid`, camelCase, nesting. Pure
functions: the state and its rules stay in `resources/`. `union` merges the two for the
`default` dialect, where one object must satisfy the seed spec and the SDK's models.
"""

from __future__ import annotations

import uuid
from typing import Any

from airflow_predibase.client.models._wire_shapes import camel
from airflow_predibase.emulator.store import Doc
from airflow_predibase.emulator.training_curves import Checkpoint, best

_NAMESPACE = uuid.UUID("6f1c1f8e-4a0b-4d4e-9a53-7e6d2b8f0c11")
#: Where uploaded files live on the platform (the SDK's default connection name).
FILE_CONNECTION = "file_uploads"
DEFAULT_TRAINING_ACCELERATOR = "a100_80gb_100"
_VERSION_STATUS = {"ready": "completed", "pending": "training"}
#: A deployment setting whose production name is not the camelCase of the seed's.
_SETTING_RENAMES = {"scale_up_threshold": "scaleUpRequestThreshold"}
#: Deployment fields shown at the top of production's object, not in its `config`.
_NOT_CONFIG = ("name", "status", "description", "created_at", "updated_at", "error")
#: Settings production accepts and never shows back.
SECRET_SETTINGS = ("hfToken",)


def stable_uuid(*parts: object) -> str:
    """A UUID for a resource the seed names only by name (repos, deployments)."""
    return str(uuid.uuid5(_NAMESPACE, "/".join(map(str, parts))))


def union(seed: dict[str, Any], platform: dict[str, Any]) -> dict[str, Any]:
    """One object for both: every seed key, then production's (they never collide in type)."""
    return {**seed, **platform}


def union_repo(seed: dict[str, Any], platform: dict[str, Any]) -> dict[str, Any]:
    """A repo for both: each version keeps the seed's `status` and `finetuningJob` (which
    production spells differently) beside production's `tag`, `createdAt`, `createdBy`."""
    versions = [
        {**theirs, **ours}
        for theirs, ours in zip(platform["versions"], seed.get("versions", []), strict=True)
    ]
    return {**seed, **platform, "versions": versions}


def user(tenant: str) -> dict[str, Any]:
    """`GET /users/current`: the user record; the SDK takes the tenant's `shortCode`."""
    return {
        "id": 1,
        "uuid": stable_uuid("user", tenant),
        "username": "emulator",
        "tenant": {
            "name": tenant,
            "shortCode": tenant,
            "subscription": {
                "id": 1,
                "tier": "enterprise",
                "isTrial": False,
                "expiration": None,
                "daysRemainingInPlan": None,
                "active": True,
            },
        },
    }


def job_params(doc: Doc) -> dict[str, Any]:
    """The job's `params`: as sent in production's shape, else built from the seed fields."""
    if doc.get("_params") is not None:
        return dict(doc["_params"])
    return {
        "base_model": doc["base_model"],
        "task": doc["task"],
        "adapter": doc["adapter_type"],
        "epochs": doc["_epochs"],
    }


def finetuning_job(seed: dict[str, Any], doc: Doc) -> dict[str, Any]:
    return {
        "uuid": seed["id"],
        "baseModel": seed["base_model"],
        "datasetName": seed["dataset"],
        "description": seed.get("description"),
        "targetRepoName": seed.get("repo"),
        "targetVersionTag": doc["_version"],
        "accelerator": {"id": doc.get("_accelerator") or DEFAULT_TRAINING_ACCELERATOR},
        "status": seed["status"],
        "params": job_params(doc),
        "createdAt": seed.get("created_at"),
        "startedAt": seed.get("started_at"),
        "completedAt": seed.get("completed_at"),
        "error": seed.get("error"),
    }


def timeline(marks: dict[str, str | None]) -> dict[str, Any]:
    """`GET .../{uuid}/timeline`: when each status began."""
    return {status: {"startedAt": at} for status, at in marks.items()}


def version_status(seed_status: str, job_status: str | None) -> str:
    """Production reports a version by its job's status (`completed`, not `ready`)."""
    return job_status or _VERSION_STATUS.get(seed_status, seed_status)


def adapter_version(
    seed: dict[str, Any], job_status: str | None, description: str | None
) -> dict[str, Any]:
    status = version_status(seed["status"], job_status)
    job = seed.get("finetuningJob")
    return {
        "repo": seed["repo"],
        "tag": seed["version"],
        "archived": seed.get("archived", False),
        "baseModel": seed.get("baseModel"),
        "description": description,
        "status": status,
        "createdAt": seed.get("created_at"),
        "createdBy": "emulator",
        # Production's artifact location: present once the adapter can be served.
        "adapterPath": f"pbase://{seed['repo']}/{seed['version']}"
        if seed["status"] == "ready"
        else None,
        "finetuningJob": None
        if job is None
        else {"uuid": job, "status": job_status, "error": None if status != "errored" else status},
    }


def repo(seed: dict[str, Any], job_statuses: dict[str, str | None]) -> dict[str, Any]:
    versions = [
        adapter_version(v, job_statuses.get(str(v.get("finetuningJob"))), None)
        for v in seed.get("versions", [])
    ]
    return {
        "uuid": stable_uuid("repo", seed["name"], seed.get("created_at")),
        "name": seed["name"],
        "description": seed.get("description"),
        "createdAt": seed.get("created_at"),
        "versions": versions,
    }


def dataset(seed: dict[str, Any]) -> dict[str, Any]:
    return {
        "uuid": seed["id"],
        "name": seed["name"],
        "status": seed["status"],
        "lastError": seed.get("lastError"),
        "connection": {"type": "file", "name": FILE_CONNECTION},
        "description": seed.get("description"),
        "createdAt": seed.get("created_at"),
        "rowCount": seed.get("row_count"),
        # The SDK's model names `columns` (commented out in 2025.10.3): production has them.
        "columns": seed.get("columns"),
    }


def deployment(
    seed: dict[str, Any], doc: Doc, max_input_length: int | None, description: str | None
) -> dict[str, Any]:
    status = seed["status"]
    # Every setting the deployment keeps (DeploymentConfig, camelCase), so that a client
    # can diff what it wants against what runs; then what the seed has no name for.
    stored = doc.get("config") or {k: v for k, v in seed.items() if k != "base_model"}
    settings = {k: v for k, v in stored.items() if k not in _NOT_CONFIG}
    config = {_SETTING_RENAMES.get(k) or camel(k): v for k, v in settings.items()}
    extras = {k: v for k, v in doc.get("_extras", {}).items() if k not in SECRET_SETTINGS}
    config.update({"baseModel": seed.get("base_model"), **extras})
    serving = status in ("ready", "updating")
    return {
        "name": seed["name"],
        "uuid": stable_uuid("deployment", seed["name"], seed.get("created_at")),
        "description": description,
        "type": "shared" if doc.get("_shared") else "dedicated",
        "status": status,
        "model": {"name": seed.get("base_model"), "maxInputLength": max_input_length or 0},
        "accelerator": {"id": seed.get("accelerator")},
        "quantization": seed.get("quantization"),
        "currentReplicas": max(1, seed.get("min_replicas") or 0) if serving else 0,
        "usesGuaranteedCapacity": bool(seed.get("uses_guaranteed_capacity")),
        "config": config,
        "createdAt": seed.get("created_at"),
        "updatedAt": seed.get("updated_at"),
        "error": seed.get("error"),
    }


def deployment_events(
    name: str, status: str, reached: list[tuple[str, str | None]]
) -> dict[str, Any]:
    """`GET /llms/{name}/events`: what the SDK's blocking create and update watch."""
    events = [
        {"eventType": "Failed" if s == "failed" else s.capitalize(), "timestamp": at}
        for s, at in reached
    ]
    return {
        "name": name,
        "deploymentStatus": status,
        "ComputeEvents": events,
        "resourceActiveTime": 0,
    }


def batch_job(seed: dict[str, Any], doc: Doc, results_url: str | None) -> dict[str, Any]:
    server = {camel(k): v for k, v in doc.get("_server", {}).items()}
    original = doc.get("_original") or {
        "dataset": seed.get("dataset"),
        "serverConfig": {"baseModel": seed.get("base_model"), **server},
    }
    return {
        "uuid": seed["id"],
        "status": seed["status"],
        "error": seed.get("error"),
        "resultPath": results_url,
        "originalRequest": original,
        "createdAt": seed.get("created_at"),
        "startedAt": seed.get("started_at"),
        "completedAt": seed.get("completed_at"),
    }


def metrics_message(
    job: dict[str, Any],
    progress: dict[str, Any] | None,
    task: str,
    checkpoints: tuple[Checkpoint, ...] = (),
    tokens: int | None = None,
) -> dict[str, Any]:
    """One message of the metrics websocket, as `_FinetuningMetrics` reads it.

    `checkpoints` are the evaluations reached when the message is sent; the last one gives
    the message's losses, and the best of them the `best_*` fields.
    """
    progress = progress or {}
    steps = int(progress.get("step") or 0)
    total = int(progress.get("total_steps") or 0)
    done = job["status"] in ("completed", "errored", "canceled", "stopped")
    latest = checkpoints[-1] if checkpoints else None
    data: dict[str, Any] = {
        "steps": latest.step if latest else steps,
        "checkpoint_number": latest.number if latest else 0,
        "epoch": latest.epoch if latest else int(progress.get("epoch") or 0),
        "train_metrics_loss": latest.train_loss if latest else progress.get("train_loss"),
        "learning_rate": 0.0002,
        "batch_size": 8,
    }
    if latest is not None:
        top = best(checkpoints)
        assert top is not None
        data |= {
            "validation_metrics_loss": latest.validation_loss,
            "best_validation_metrics_loss": top.validation_loss,
            "best_valid_metric": top.validation_loss,
            "best_eval_metric_checkpoint_number": top.number,
            "best_eval_metric_steps": top.step,
            "best_eval_metric_epoch": top.epoch,
            "best_train_metrics_loss": min(c.train_loss for c in checkpoints),
            "last_improvement_steps": latest.step - top.step,
        }
    if tokens is not None:
        data["total_tokens_used"] = tokens
    if task == "grpo" and data["steps"]:
        loss = float(data["train_metrics_loss"] or 0.0)
        data["grpo_train_rewards"] = {
            "total_reward": round(1.0 - loss / 3, 4),
            "total_reward_std": 0.1,
        }
    return {
        "data": data,
        "meta": {
            "is_completed": done,
            "model_uuid": job["id"],
            "run_id": job["id"],
            "steps": steps,
            "steps_per_epoch": max(1, total),
            "total_steps": total,
        },
    }
