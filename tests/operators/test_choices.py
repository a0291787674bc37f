"""Operators keep their own copies of the valid choices (importing the pydantic models at
DAG-parse time would cost import time); these must equal the models' definitions."""

from __future__ import annotations

import inspect

from airflow_predibase.client.models import finetuning as finetuning_models
from airflow_predibase.client.models.deployments import QUANTIZATIONS as MODEL_QUANTIZATIONS
from airflow_predibase.operators import datasets, deployments, finetuning


def test_finetuning_choices_match_the_models():
    assert finetuning.ADAPTER_TYPES == finetuning_models.ADAPTER_TYPES
    assert finetuning.TASKS == finetuning_models.FINETUNING_TASKS


def test_dataset_tasks_are_the_finetuning_tasks_plus_batch():
    assert (*finetuning_models.FINETUNING_TASKS, "batch") == datasets.TASKS
    assert set(finetuning_models.TASK_COLUMNS) == set(finetuning_models.FINETUNING_TASKS)


def test_quantizations_match_the_models():
    assert deployments.QUANTIZATIONS == MODEL_QUANTIZATIONS


def test_the_batch_server_settings_are_the_sdk_server_config_but_the_operator_parameters():
    from airflow_predibase.client.models import BatchInferenceJobRequest, BatchInferenceServerConfig
    from airflow_predibase.operators import batch_inference

    own = {"base_model", "hf_token"}
    assert (
        set(batch_inference.SERVER_CONFIG_KEYS)
        == set(BatchInferenceServerConfig.model_fields) - own
    )
    assert (
        set(BatchInferenceServerConfig.model_fields)
        == BatchInferenceJobRequest.SERVER_CONFIG_FIELDS
    )
    assert (
        set(BatchInferenceJobRequest.model_fields) >= BatchInferenceJobRequest.SERVER_CONFIG_FIELDS
    )


def test_quantizations_and_backends_are_defined_once():
    from airflow_predibase.client.models import configs

    assert MODEL_QUANTIZATIONS == configs.QUANTIZATIONS
    assert configs.BACKENDS == ("v1", "v2", "v3")


# The official SDK's (predibase 2025.10.3) settings, by class, under its snake_case names:
# every one must be accepted, in the place the operators take it.
SDK_FINETUNING_CONFIG = {
    "base_model", "adapter", "task", "epochs", "train_steps", "learning_rate", "rank",
    "target_modules", "enable_early_stopping", "apply_chat_template", "lr_scheduler",
    "optimizer", "lora_alpha", "lora_dropout", "warmup_ratio", "effective_batch_size",
}  # fmt: skip
SDK_GRPO_CONFIG = {"beta", "num_generations", "sampling_params", "reward_fns", "secrets"}
SDK_UPDATE_DEPLOYMENT_CONFIG = {
    "base_model", "custom_args", "cooldown_time", "hf_token", "min_replicas", "max_replicas",
    "scale_up_threshold", "max_total_tokens", "lorax_image_tag", "request_logging_enabled",
    "direct_ingress", "preloaded_adapters", "speculator", "prefix_caching", "backend",
    "disable_adapters", "uses_guaranteed_capacity", "chunked_prefill",
    "speculation_disable_by_batch_size", "max_num_batched_tokens", "cache_model",
    "merge_adapter",
}  # fmt: skip
SDK_DEPLOYMENT_CONFIG = {
    *SDK_UPDATE_DEPLOYMENT_CONFIG,
    "compute_spec",
    "quantization",
    "accelerator",
}


def test_every_sdk_training_setting_has_a_place():
    from airflow_predibase.client.models import FinetuningJobRequest

    fields = set(FinetuningJobRequest.model_fields)
    renamed = {"adapter": "adapter_type"}
    sdk = {renamed.get(name, name) for name in SDK_FINETUNING_CONFIG | SDK_GRPO_CONFIG}
    assert sdk <= fields
    assert {"continue_from_version", "compute_spec", "dataset", "repo", "description"} <= fields
    operator_args = set(inspect.signature(finetuning.FinetuneOperator.__init__).parameters)
    for name in sdk | {"continue_from_version", "compute_spec"}:
        assert name in operator_args or name not in finetuning._RESERVED, name


def test_every_sdk_serving_setting_has_a_place():
    from airflow_predibase.client.models import DeploymentRequest, DeploymentUpdateRequest

    assert set(DeploymentRequest.model_fields) >= SDK_DEPLOYMENT_CONFIG
    assert set(DeploymentUpdateRequest.model_fields) >= SDK_UPDATE_DEPLOYMENT_CONFIG
    operator_args = set(inspect.signature(deployments.DeployOperator.__init__).parameters)
    for name in SDK_DEPLOYMENT_CONFIG:
        assert name in operator_args or name in deployments.config_keys(), name
