"""Production's request bodies (as the official SDK sends them) into the seed's request models.

The resources take the seed's models; this module is the one place that reads
production's nesting and camelCase, checks what the seed models cannot (the `params`
keys, GRPO reward functions, a nested `computeSpec`), and keeps the rest aside.
"""

from __future__ import annotations

import ast
import base64
import binascii
from collections.abc import Mapping
from typing import Any

from airflow_predibase.client.models import (
    BatchInferenceJobRequest,
    DeploymentRequest,
    DeploymentUpdateRequest,
    FinetuningJobRequest,
)
from airflow_predibase.client.models._wire_shapes import snake
from airflow_predibase.client.models.configs import SECRET_FIELDS
from airflow_predibase.emulator.errors import ApiError
from airflow_predibase.emulator.platform_wire import SECRET_SETTINGS
from airflow_predibase.emulator.spec import require_accelerator
from airflow_predibase.emulator.wire import validate, without_secrets

TASKS = ("sft", "continued_pretraining", "grpo", "classification")
#: `FinetuningConfig` and its task subclasses, by their wire names.
_COMMON_PARAMS = {
    "base_model", "adapter", "task", "epochs", "train_steps", "learning_rate", "rank",
    "target_modules", "enable_early_stopping", "apply_chat_template", "lr_scheduler",
    "optimizer", "lora_alpha", "lora_dropout", "warmup_ratio", "effective_batch_size",
}  # fmt: skip
_GRPO_PARAMS = {"beta", "num_generations", "sampling_params", "rewardFns", "reward_fns", "secrets"}
#: `params` keys whose seed name differs.
_PARAM_RENAMES = {"rewardFns": "reward_fns", "adapter": "adapter_type"}
#: `config` keys whose seed name is not their snake_case.
_DEPLOYMENT_RENAMES = {"scaleUpRequestThreshold": "scale_up_threshold"}
#: The seed names a deployment's `config` can set (everything the SDK's configs take).
_DEPLOYMENT_FIELDS = frozenset(DeploymentRequest.model_fields) - {"name"}


def _object(body: Any, field: str) -> dict[str, Any]:
    value = body.get(field) if isinstance(body, dict) else None
    if not isinstance(value, dict):
        raise ApiError(422, f"field '{field}': must be a JSON object")
    return value


def _at(value: Any, *keys: str) -> Any:
    """`value[k1][k2]...`, or None where a level is missing or not an object."""
    for key in keys:
        value = value.get(key) if isinstance(value, dict) else None
    return value


def dataset_name(ref: Any) -> str:
    """`<connection>/<name>` or `<name>`, as the SDK sends a dataset, to the name."""
    if not isinstance(ref, str) or not ref.strip():
        raise ApiError(422, "field 'dataset': must be a dataset name")
    return ref.rsplit("/", 1)[-1]


def _check_reward_functions(params: dict[str, Any]) -> None:
    fns = params.get("rewardFns", params.get("reward_fns"))
    functions = fns.get("functions") if isinstance(fns, dict) else None
    if not isinstance(functions, dict) or not functions:
        raise ApiError(422, "field 'params.rewardFns.functions': GRPO needs reward functions")
    for name, fn in functions.items():
        encoded = fn.get("encodedFn") if isinstance(fn, dict) else None
        try:
            source = base64.b64decode(str(encoded), validate=True).decode()
            tree = ast.parse(source)
        except (binascii.Error, UnicodeDecodeError, SyntaxError, ValueError):
            raise ApiError(
                422, f"reward function {name!r}: 'encodedFn' is not base64 of Python source"
            ) from None
        defs = [node for node in tree.body if isinstance(node, ast.FunctionDef)]
        if len(defs) != 1 or len(defs[0].args.args) != 3:
            raise ApiError(422, f"reward function {name!r} must be one function of 3 arguments")


def check_params(params: dict[str, Any]) -> str:
    """The task of a `FinetuningConfig` as the SDK dumps it; a 422 naming what is wrong."""
    task = params.get("task") or "sft"
    if task not in TASKS:
        raise ApiError(422, f"field 'params.task': must be one of {', '.join(TASKS)}, got {task!r}")
    allowed = _COMMON_PARAMS | (_GRPO_PARAMS if task == "grpo" else set())
    unknown = sorted(set(params) - allowed)
    if unknown:
        raise ApiError(
            422, f"field 'params': unknown setting(s) for task {task!r}: {', '.join(unknown)}"
        )
    if task == "grpo":
        _check_reward_functions(params)
    return str(task)


def _reward_functions(fns: Any) -> Any:
    """Production's `rewardFns` (`encodedFn`) in the seed's names (`encoded_fn`)."""
    if not isinstance(fns, dict) or not isinstance(fns.get("functions"), dict):
        return fns
    functions = {
        name: {"encoded_fn": fn.get("encodedFn", fn.get("encoded_fn"))}
        if isinstance(fn, dict)
        else fn
        for name, fn in fns["functions"].items()
    }
    out = {"functions": functions}
    if fns.get("runtime") is not None:
        out["runtime"] = fns["runtime"]
    return out


def training_settings(params: dict[str, Any]) -> dict[str, Any]:
    """The settings of a `params` object under the seed's names, nulls dropped."""
    seed: dict[str, Any] = {}
    for key, value in params.items():
        name = _PARAM_RENAMES.get(key, key)
        # The job's own fields (dataset, repo, ...) sit outside `params`.
        if value is None or name in FinetuningJobRequest.JOB_FIELDS:
            continue
        if name == "reward_fns":
            value = _reward_functions(value)
        elif name == "sampling_params" and isinstance(value, dict):
            value = {k: v for k, v in value.items() if v is not None}
        seed[name] = value
    return seed


def finetuning(body: Any, base_model_of: Any) -> tuple[FinetuningJobRequest, str, dict[str, Any]]:
    """(the seed request, the task, `params` as sent). `base_model_of(adapter_id)` gives the
    base model of the version a continued training starts from."""
    params = _object(body, "params")
    task = check_params(params)
    seed = training_settings(params)
    parent = body.get("continueFromVersion")
    if parent is not None:
        seed["continue_from_version"] = parent
        seed.setdefault("base_model", base_model_of(parent))
    if "base_model" not in seed:
        raise ApiError(422, "field 'params.base_model': required (unless continueFromVersion)")
    seed["task"] = task
    seed["dataset"] = dataset_name(body.get("dataset"))
    seed["repo"] = body.get("repo")
    if body.get("description") is not None:
        seed["description"] = body["description"]
    if body.get("computeSpec") is not None:
        seed["compute_spec"] = body["computeSpec"]
    return validate(FinetuningJobRequest, seed), task, params


def _settings(
    config: dict[str, Any], accelerators: Mapping[str, str]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(seed settings, settings the seed has no name for) of a camelCase `config`, nulls
    and secrets dropped, the accelerator and the compute spec's SKU checked as the seed's
    are (a 400 naming the field and listing the valid IDs)."""
    seed: dict[str, Any] = {}
    extras: dict[str, Any] = {}
    for key, value in config.items():
        name = _DEPLOYMENT_RENAMES.get(key) or snake(key)
        if value is None or key in SECRET_SETTINGS or name in SECRET_FIELDS:
            continue
        if name in _DEPLOYMENT_FIELDS:
            seed[name] = value
        else:
            extras[key] = value
    accelerator = seed.get("accelerator")
    if isinstance(accelerator, str):
        seed["accelerator"] = require_accelerator(accelerator, "config.accelerator", accelerators)
    if "compute_spec" in seed:
        sku = _at(seed["compute_spec"], "requests", "inference", "sku")
        if not isinstance(sku, str):
            raise ApiError(422, "field 'config.computeSpec.requests.inference.sku': required")
        sku = require_accelerator(sku, "config.computeSpec.requests.inference.sku", accelerators)
        seed.setdefault("accelerator", sku)
    return seed, extras


def deployment(
    body: Any, accelerators: Mapping[str, str]
) -> tuple[DeploymentRequest, dict[str, Any]]:
    seed, extras = _settings(_object(body, "config"), accelerators)
    seed["name"] = body.get("name")
    if body.get("description"):
        seed["description"] = body["description"]
    return validate(DeploymentRequest, seed), extras


def deployment_update(
    body: Any, accelerators: Mapping[str, str]
) -> tuple[DeploymentUpdateRequest, dict[str, Any]]:
    config = _object(body, "config") if "config" in body else {}
    seed, extras = _settings(config, accelerators)
    if body.get("description") is not None:
        seed["description"] = body["description"]
    return validate(DeploymentUpdateRequest, seed), extras


def batch(body: Any) -> tuple[BatchInferenceJobRequest, dict[str, Any]]:
    """(the seed request, the body as sent without its secrets, shown back)."""
    server = _object(body, "serverConfig")
    seed: dict[str, Any] = {"dataset": dataset_name(body.get("dataset"))}
    # Beside `serverConfig` (the SDK sends neither; the provider sends both).
    for key in ("output", "description"):
        if body.get(key) is not None:
            seed[key] = body[key]
    for key, value in server.items():
        name = snake(key)
        if value is not None and name in BatchInferenceJobRequest.SERVER_CONFIG_FIELDS:
            seed[name] = value
    shown = {**body, "serverConfig": without_secrets(server)}
    return validate(BatchInferenceJobRequest, seed), shown
