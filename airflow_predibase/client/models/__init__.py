"""Typed wire models for every request and response, and the status enums.

Submodules load on first use (`from airflow_predibase.client.models import Deployment` loads
`deployments` alone): building pydantic models costs import time that a DAG file that only
names an operator should not pay.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow_predibase.client.models.batch import (
        BatchInferenceJob,
        BatchInferenceJobRequest,
        BatchInferenceResults,
        BatchInputRow,
        BatchOutputRow,
    )
    from airflow_predibase.client.models.configs import (
        BACKENDS,
        BatchInferenceServerConfig,
        ComputeRequest,
        RewardFunction,
        RewardFunctions,
        RewardFunctionsRuntime,
        SamplingParams,
        ServingComputeRequests,
        ServingComputeSpec,
        TrainingComputeRequests,
        TrainingComputeSpec,
        encode_reward_function,
        import_reward_function,
    )
    from airflow_predibase.client.models.datasets import (
        Dataset,
        DatasetRequest,
        DatasetUploadComplete,
        DatasetUploadRequest,
        DatasetUploadTarget,
    )
    from airflow_predibase.client.models.deployments import (
        ACCELERATORS,
        QUANTIZATIONS,
        Deployment,
        DeploymentConfig,
        DeploymentRequest,
        DeploymentUpdateRequest,
        canonical_accelerator,
        normalize_accelerator,
    )
    from airflow_predibase.client.models.finetuning import (
        ADAPTER_TYPES,
        FINETUNING_TASKS,
        GRPO_FIELDS,
        TASK_COLUMNS,
        FinetuningJob,
        FinetuningJobRequest,
        TrainingProgress,
    )
    from airflow_predibase.client.models.models_catalog import BaseModelInfo
    from airflow_predibase.client.models.repos import AdapterVersion, Repo, RepoRequest
    from airflow_predibase.client.models.serving import (
        ChatCompletionChunk,
        ChatCompletionRequest,
        ChatCompletionResponse,
        ChatMessage,
        CompletionRequest,
        CompletionResponse,
        GenerateParameters,
        GenerateRequest,
        GenerateResponse,
        ServingInfo,
        StreamEvent,
        Usage,
    )
    from airflow_predibase.client.models.status import (
        AdapterVersionStatus,
        BatchInferenceJobStatus,
        DatasetStatus,
        DeploymentStatus,
        FinetuningJobStatus,
    )

_WHERE = {
    **dict.fromkeys(
        [
            "BatchInferenceJob",
            "BatchInferenceJobRequest",
            "BatchInferenceResults",
            "BatchInputRow",
            "BatchOutputRow",
        ],
        "batch",
    ),
    **dict.fromkeys(
        [
            "BACKENDS",
            "BatchInferenceServerConfig",
            "ComputeRequest",
            "RewardFunction",
            "RewardFunctions",
            "RewardFunctionsRuntime",
            "SamplingParams",
            "ServingComputeRequests",
            "ServingComputeSpec",
            "TrainingComputeRequests",
            "TrainingComputeSpec",
            "encode_reward_function",
            "import_reward_function",
        ],
        "configs",
    ),
    **dict.fromkeys(
        [
            "Dataset",
            "DatasetRequest",
            "DatasetUploadComplete",
            "DatasetUploadRequest",
            "DatasetUploadTarget",
        ],
        "datasets",
    ),
    **dict.fromkeys(
        [
            "ACCELERATORS",
            "Deployment",
            "DeploymentConfig",
            "DeploymentRequest",
            "DeploymentUpdateRequest",
            "QUANTIZATIONS",
            "canonical_accelerator",
            "normalize_accelerator",
        ],
        "deployments",
    ),
    **dict.fromkeys(
        [
            "ADAPTER_TYPES",
            "FINETUNING_TASKS",
            "GRPO_FIELDS",
            "FinetuningJob",
            "FinetuningJobRequest",
            "TASK_COLUMNS",
            "TrainingProgress",
        ],
        "finetuning",
    ),
    **dict.fromkeys(["BaseModelInfo"], "models_catalog"),
    **dict.fromkeys(["AdapterVersion", "Repo", "RepoRequest"], "repos"),
    **dict.fromkeys(
        [
            "ChatCompletionChunk",
            "ChatCompletionRequest",
            "ChatCompletionResponse",
            "ChatMessage",
            "CompletionRequest",
            "CompletionResponse",
            "GenerateParameters",
            "GenerateRequest",
            "GenerateResponse",
            "ServingInfo",
            "StreamEvent",
            "Usage",
        ],
        "serving",
    ),
    **dict.fromkeys(
        [
            "AdapterVersionStatus",
            "BatchInferenceJobStatus",
            "DatasetStatus",
            "DeploymentStatus",
            "FinetuningJobStatus",
        ],
        "status",
    ),
}

__all__ = [
    "ACCELERATORS",
    "ADAPTER_TYPES",
    "BACKENDS",
    "FINETUNING_TASKS",
    "GRPO_FIELDS",
    "QUANTIZATIONS",
    "TASK_COLUMNS",
    "AdapterVersion",
    "AdapterVersionStatus",
    "BaseModelInfo",
    "BatchInferenceJob",
    "BatchInferenceJobRequest",
    "BatchInferenceJobStatus",
    "BatchInferenceResults",
    "BatchInferenceServerConfig",
    "BatchInputRow",
    "BatchOutputRow",
    "ChatCompletionChunk",
    "ChatCompletionRequest",
    "ChatCompletionResponse",
    "ChatMessage",
    "CompletionRequest",
    "CompletionResponse",
    "ComputeRequest",
    "Dataset",
    "DatasetRequest",
    "DatasetStatus",
    "DatasetUploadComplete",
    "DatasetUploadRequest",
    "DatasetUploadTarget",
    "Deployment",
    "DeploymentConfig",
    "DeploymentRequest",
    "DeploymentStatus",
    "DeploymentUpdateRequest",
    "FinetuningJob",
    "FinetuningJobRequest",
    "FinetuningJobStatus",
    "GenerateParameters",
    "GenerateRequest",
    "GenerateResponse",
    "Repo",
    "RepoRequest",
    "RewardFunction",
    "RewardFunctions",
    "RewardFunctionsRuntime",
    "SamplingParams",
    "ServingComputeRequests",
    "ServingComputeSpec",
    "ServingInfo",
    "StreamEvent",
    "TrainingComputeRequests",
    "TrainingComputeSpec",
    "TrainingProgress",
    "Usage",
    "canonical_accelerator",
    "encode_reward_function",
    "import_reward_function",
    "normalize_accelerator",
]


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(importlib.import_module(f"{__name__}.{_WHERE[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
