"""Production Predibase's requests, as the official SDK (`predibase` 2025.10.3) sends them.

Only what differs from the seed spec lives here; `_operations` picks these with
`per_dialect`. The bodies are built from the request models generically
(`model_dump(exclude_none=True)` by field name), so a setting added to a request model
reaches the wire without code here; this module knows only the structure:

- fine-tuning: `{params: {...}, dataset, repo, description, continueFromVersion,
  computeSpec}`; every other field goes into `params` under its snake_case name, except
  `adapter_type` (`adapter`) and `reward_fns` (`rewardFns`, with `encodedFn` inside);
- deployments: `{name, description, config: {camelCase}}` (update: `{config, description}`),
  where `scale_up_threshold` is `scaleUpRequestThreshold`;
- batch inference: `{dataset, serverConfig: {camelCase}}` at `/batch-inference`.

A write whose reply production does not document (the SDK ignores it) is followed by a
read of the resource, unless the reply already is one (`one_or`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

from pydantic import BaseModel

from airflow_predibase.client._base import ApiRequest, decode, parse_model, seg
from airflow_predibase.client._exchange import Op, many, one, one_or
from airflow_predibase.client.models import (
    BatchInferenceJob,
    BatchInferenceJobRequest,
    BatchInferenceResults,
    Dataset,
    Deployment,
    DeploymentRequest,
    DeploymentUpdateRequest,
    FinetuningJob,
    FinetuningJobRequest,
)
from airflow_predibase.client.models._wire_shapes import camel
from airflow_predibase.client.models.training import FinetuningCostEstimate, FinetuningTimeline

#: Fine-tuning fields sent beside `params`, with their wire names.
FINETUNING_TOP_LEVEL = {
    "dataset": "dataset",
    "repo": "repo",
    "description": "description",
    "continue_from_version": "continueFromVersion",
    "compute_spec": "computeSpec",
}
#: Fine-tuning fields whose name inside `params` is not the field name.
PARAM_NAMES = {"adapter_type": "adapter", "reward_fns": "rewardFns"}
#: Keys renamed wherever they appear inside a value (GRPO reward functions).
NESTED_NAMES = {"encoded_fn": "encodedFn"}
#: Deployment config keys whose wire name is not the plain camelCase of the field.
CONFIG_NAMES = {"scale_up_threshold": "scaleUpRequestThreshold"}
#: Batch job fields sent beside `serverConfig`. `description` and `output` are not sent by
#: the SDK: the provider keeps its idempotency marker in `description`.
BATCH_TOP_LEVEL = ("dataset", "description", "output")
#: The connection the SDK assumes for a dataset name without one.
UPLOAD_CONNECTION = "file_uploads"
#: Page size asked of `/batch-inference` (the SDK asks for 10 by default).
BATCH_PAGE = 100


def _fields(request: BaseModel) -> dict[str, Any]:
    return request.model_dump(mode="json", exclude_none=True)


def _renamed(value: Any) -> Any:
    if isinstance(value, dict):
        return {NESTED_NAMES.get(k, k): _renamed(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_renamed(v) for v in value]
    return value


def finetuning_body(request: FinetuningJobRequest) -> dict[str, Any]:
    """`POST /v2/finetuning/jobs` as `FinetuningJobs.create` sends it."""
    fields = _fields(request)
    body = {wire: fields.pop(name) for name, wire in FINETUNING_TOP_LEVEL.items() if name in fields}
    body["params"] = {PARAM_NAMES.get(k, k): _renamed(v) for k, v in fields.items()}
    return body


def deployment_config(fields: Mapping[str, Any]) -> dict[str, Any]:
    """Snake_case settings as the SDK's `DeploymentConfig.model_dump(by_alias=True)`."""
    return {CONFIG_NAMES.get(k) or camel(k): v for k, v in fields.items()}


def deployment_body(request: DeploymentRequest) -> dict[str, Any]:
    """`POST /v2/deployments`: `{name, description, config}`."""
    fields = _fields(request)
    name, description = fields.pop("name"), fields.pop("description", "")
    return {"name": name, "description": description, "config": deployment_config(fields)}


def deployment_update_body(request: DeploymentUpdateRequest) -> dict[str, Any]:
    """`PUT /v2/deployments/{name}`: `{config, description?}`."""
    fields = _fields(request)
    body: dict[str, Any] = {"config": deployment_config(fields)}
    if "description" in fields:
        body["description"] = body["config"].pop("description")
    return body


def batch_body(request: BatchInferenceJobRequest) -> dict[str, Any]:
    """`POST /v2/batch-inference`: `{dataset, serverConfig}`.

    A nested `server_config` (if the request model has one) merges into the flat settings.
    """
    fields = _fields(request)
    body = {name: fields.pop(name) for name in BATCH_TOP_LEVEL if name in fields}
    nested = fields.pop("server_config", None) or {}
    body["serverConfig"] = deployment_config({**fields, **nested})
    return body


# -- operations ---------------------------------------------------------------------------


def get_dataset(name: str) -> Op[Dataset]:
    """`GET /v1/datasets/name/{name}?connectionName=`; `name` may be `connection/name`."""
    connection, _, plain = name.rpartition("/")
    query = urlencode({"connectionName": connection or UPLOAD_CONNECTION})
    return one(
        ApiRequest("GET", f"/v1/datasets/name/{seg(plain)}?{query}", plane="gateway"), Dataset
    )


def create_finetuning_job(request: FinetuningJobRequest) -> Op[FinetuningJob]:
    return one(ApiRequest("POST", "/finetuning/jobs", json=finetuning_body(request)), FinetuningJob)


def _read_deployment(name: str) -> Op[Deployment]:
    return one(ApiRequest("GET", f"/deployments/{seg(name)}"), Deployment)


def create_deployment(request: DeploymentRequest) -> Op[Deployment]:
    call = ApiRequest("POST", "/deployments", json=deployment_body(request))
    return one_or(call, Deployment, lambda: _read_deployment(request.name))


def update_deployment(name: str, request: DeploymentUpdateRequest) -> Op[Deployment]:
    call = ApiRequest("PUT", f"/deployments/{seg(name)}", json=deployment_update_body(request))
    return one_or(call, Deployment, lambda: _read_deployment(name))


def create_batch_inference_job(request: BatchInferenceJobRequest) -> Op[BatchInferenceJob]:
    return one(ApiRequest("POST", "/batch-inference", json=batch_body(request)), BatchInferenceJob)


def list_batch_inference_jobs() -> Op[list[BatchInferenceJob]]:
    call = ApiRequest("GET", f"/batch-inference?limit={BATCH_PAGE}")
    return many(call, BatchInferenceJob, "jobs")


def get_batch_inference_job(job_id: str) -> Op[BatchInferenceJob]:
    return one(ApiRequest("GET", f"/batch-inference/{seg(job_id)}"), BatchInferenceJob)


def cancel_batch_inference_job(job_id: str) -> Op[BatchInferenceJob]:
    call = ApiRequest("POST", f"/batch-inference/{seg(job_id)}/cancel", idempotent=True)
    return one_or(call, BatchInferenceJob, lambda: get_batch_inference_job(job_id))


def get_batch_inference_results(job_id: str) -> Op[BatchInferenceResults]:
    call = ApiRequest("GET", f"/batch-inference/{seg(job_id)}/results")
    return one(call, BatchInferenceResults)


# -- training records: cost estimate and timeline (production only) -----------------------

#: Answers meaning "this server has no such record": the operation returns None.
NO_RECORD = frozenset({404, 405, 501})


def cost_estimate_body(request: FinetuningJobRequest) -> dict[str, Any]:
    """The body `FinetuningJobs.estimate_cost` sends with its GET."""
    sampling = request.sampling_params
    return {
        "baseModel": request.base_model,
        "datasetName": request.dataset,
        # The SDK's configs always carry these (its defaults: `sft`, `lora`).
        "taskType": request.task or "sft",
        "adapterType": request.adapter_type or "lora",
        "epochs": request.epochs,
        "trainSteps": request.train_steps,
        "numGenerations": request.num_generations,
        "maxTokens": sampling.max_tokens if sampling is not None else None,
    }


def estimate_finetuning_cost(request: FinetuningJobRequest) -> Op[FinetuningCostEstimate | None]:
    """`GET /v2/finetuning/jobs/cost-estimate` with a JSON body, as the SDK sends it; None
    when the server has no such route."""
    call = ApiRequest(
        "GET",
        "/finetuning/jobs/cost-estimate",
        json=cost_estimate_body(request),
        ok_statuses=NO_RECORD,
    )
    response = yield call
    if response.status_code in NO_RECORD:
        return None
    return parse_model(call, response, FinetuningCostEstimate)


def get_finetuning_timeline(job_id: str) -> Op[FinetuningTimeline | None]:
    """`GET /v2/finetuning/jobs/{uuid}/timeline`; None when the server has no such route."""
    call = ApiRequest("GET", f"/finetuning/jobs/{seg(job_id)}/timeline", ok_statuses=NO_RECORD)
    response = yield call
    if response.status_code in NO_RECORD:
        return None
    return FinetuningTimeline.from_wire(decode(call, response))
