"""Every Predibase API operation, written once, with no I/O.

An operation is a generator: it yields the `ApiRequest`s it needs, receives each
`httpx.Response` (already checked: errors were raised by the sender), and returns the parsed
result. Most yield once; the dataset upload and the batch results download chain several
exchanges with `yield from`. The sync and async clients only differ in how they send.

Paths and bodies here are the seed spec's. Where production (as the official SDK speaks
it) differs, the operation hands over to `_platform` through `per_dialect`; answers in
either shape parse into the same models (`models/_wire_shapes.py`).

A streaming operation is a `StreamOp`: one request and the model each SSE event parses into.
"""

from __future__ import annotations

from collections.abc import Mapping

from airflow_predibase import dataset_files
from airflow_predibase.client import _platform as platform
from airflow_predibase.client._base import (
    ApiRequest,
    invalid_response,
    parse_jsonl,
    parse_list,
    seg,
)
from airflow_predibase.client._exchange import (
    Op,
    StreamOp,
    many,
    nothing,
    one,
    one_or,
    per_dialect,
    serving,
)
from airflow_predibase.client.models import (
    AdapterVersion,
    BaseModelInfo,
    BatchInferenceJob,
    BatchInferenceJobRequest,
    BatchInferenceResults,
    BatchOutputRow,
    ChatCompletionChunk,
    ChatCompletionRequest,
    ChatCompletionResponse,
    CompletionRequest,
    CompletionResponse,
    Dataset,
    DatasetRequest,
    DatasetUploadComplete,
    DatasetUploadRequest,
    DatasetUploadTarget,
    Deployment,
    DeploymentRequest,
    DeploymentUpdateRequest,
    FinetuningJob,
    FinetuningJobRequest,
    GenerateRequest,
    GenerateResponse,
    Repo,
    RepoRequest,
    ServingInfo,
    StreamEvent,
)
from airflow_predibase.client.models.repos import AdapterVersionUpdate
from airflow_predibase.client.models.training import FinetuningCostEstimate, FinetuningTimeline

#: MIME types of the formats the platform accepts, by file extension.
UPLOAD_MIME_TYPES = {
    ext: dataset_files.UPLOAD_MIME_TYPES[fmt] for ext, fmt in dataset_files.EXTENSIONS.items()
}


# -- models -------------------------------------------------------------------------------


def list_models() -> Op[list[BaseModelInfo]]:
    return many(ApiRequest("GET", "/models"), BaseModelInfo, "models")


# -- datasets -----------------------------------------------------------------------------


def create_dataset(request: DatasetRequest) -> Op[Dataset]:
    return one(ApiRequest("POST", "/datasets", json=request.to_body()), Dataset)


def list_datasets() -> Op[list[Dataset]]:
    return many(ApiRequest("GET", "/datasets"), Dataset, "datasets")


def get_dataset(name: str) -> Op[Dataset]:
    call = ApiRequest("GET", f"/datasets/{seg(name)}")
    return per_dialect(lambda: one(call, Dataset), lambda: platform.get_dataset(name))


def begin_dataset_upload(file_name: str, mime_type: str) -> Op[DatasetUploadTarget]:
    body = DatasetUploadRequest(file_name=file_name, mime_type=mime_type).to_body()
    # It only hands out an upload URL, so a repeat is harmless.
    call = ApiRequest("POST", "/datasets/upload", json=body, idempotent=True)
    return one(call, DatasetUploadTarget)


def put_upload_bytes(
    presigned_url: str,
    content: bytes,
    mime_type: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> Op[None]:
    """`headers`: the begin reply's `requiredHeaders`, which the storage checks."""
    headers = ({"Content-Type": mime_type} if mime_type else {}) | dict(headers or {})
    return nothing(
        ApiRequest("PUT", presigned_url, plane="external", content=content, headers=headers)
    )


def complete_dataset_upload(
    name: str, upload_token: str, description: str | None = None
) -> Op[Dataset]:
    body = DatasetUploadComplete(
        name=name, upload_token=upload_token, description=description
    ).to_body()
    # The server consumes the upload token: a blind retry would answer 404, not the dataset.
    call = ApiRequest("PUT", "/datasets/upload", json=body, idempotent=False)
    # Production's reply is not documented as the dataset (the SDK reads it by name after).
    return one_or(call, Dataset, lambda: get_dataset(name))


def upload_mime_type(file_name: str) -> str:
    """The MIME type for a dataset file, from its extension (CSV, JSONL, JSON, Parquet)."""
    for extension, mime_type in UPLOAD_MIME_TYPES.items():
        if file_name.lower().endswith(extension):
            return mime_type
    formats = ", ".join(UPLOAD_MIME_TYPES)
    raise ValueError(f"cannot tell the format of {file_name!r}: use one of {formats}")


def upload_dataset(
    name: str,
    content: bytes,
    file_name: str,
    mime_type: str | None = None,
    description: str | None = None,
) -> Op[Dataset]:
    """Steps 1-3 of the upload flow. The dataset comes back `connecting`: poll it."""
    dataset_files.check_size(len(content), repr(file_name))
    mime_type = mime_type or upload_mime_type(file_name)
    target = yield from begin_dataset_upload(file_name, mime_type)
    yield from put_upload_bytes(target.presigned_url, content, mime_type, target.required_headers)
    return (yield from complete_dataset_upload(name, target.upload_token, description))


# -- adapter repositories -----------------------------------------------------------------


def create_repo(request: RepoRequest) -> Op[Repo]:
    return one(ApiRequest("POST", "/repos", json=request.to_body()), Repo)


def list_repos() -> Op[list[Repo]]:
    return many(ApiRequest("GET", "/repos"), Repo, "repos")


def get_repo(name: str) -> Op[Repo]:
    return one(ApiRequest("GET", f"/repos/{seg(name)}"), Repo)


def delete_repo(name: str) -> Op[None]:
    return nothing(ApiRequest("DELETE", f"/repos/{seg(name)}"))


def get_adapter_version(repo: str, version: int) -> Op[AdapterVersion]:
    found = yield from one(
        ApiRequest("GET", f"/repos/{seg(repo)}/version/{seg(version)}"), AdapterVersion
    )
    # Not every answer names the repo, and `adapter_id` needs it.
    return found if found.repo else found.model_copy(update={"repo": repo})


# -- fine-tuning jobs ---------------------------------------------------------------------


def create_finetuning_job(request: FinetuningJobRequest) -> Op[FinetuningJob]:
    call = ApiRequest("POST", "/finetuning/jobs", json=request.to_body())
    return per_dialect(
        lambda: one(call, FinetuningJob), lambda: platform.create_finetuning_job(request)
    )


def list_finetuning_jobs() -> Op[list[FinetuningJob]]:
    return many(ApiRequest("GET", "/finetuning/jobs"), FinetuningJob, "jobs")


def get_finetuning_job(job_id: str) -> Op[FinetuningJob]:
    return one(ApiRequest("GET", f"/finetuning/jobs/{seg(job_id)}"), FinetuningJob)


def cancel_finetuning_job(job_id: str) -> Op[FinetuningJob]:
    # Cancelling twice has the effect of cancelling once: safe to retry.
    call = ApiRequest("POST", f"/finetuning/jobs/{seg(job_id)}/cancel", idempotent=True)
    # Production's reply is not documented as the job (the SDK ignores it).
    return one_or(call, FinetuningJob, lambda: get_finetuning_job(job_id))


# -- deployments --------------------------------------------------------------------------


def create_deployment(request: DeploymentRequest) -> Op[Deployment]:
    call = ApiRequest("POST", "/deployments", json=request.to_body())
    return per_dialect(lambda: one(call, Deployment), lambda: platform.create_deployment(request))


def list_deployments() -> Op[list[Deployment]]:
    return many(ApiRequest("GET", "/deployments"), Deployment, "deployments")


def get_deployment(name: str) -> Op[Deployment]:
    return one(ApiRequest("GET", f"/deployments/{seg(name)}"), Deployment)


def update_deployment(name: str, request: DeploymentUpdateRequest) -> Op[Deployment]:
    call = ApiRequest("PUT", f"/deployments/{seg(name)}", json=request.to_body())
    return per_dialect(
        lambda: one(call, Deployment), lambda: platform.update_deployment(name, request)
    )


def delete_deployment(name: str) -> Op[None]:
    return nothing(ApiRequest("DELETE", f"/deployments/{seg(name)}"))


# -- batch inference ----------------------------------------------------------------------


def create_batch_inference_job(request: BatchInferenceJobRequest) -> Op[BatchInferenceJob]:
    call = ApiRequest("POST", "/batch-inference/jobs", json=request.to_body())
    return per_dialect(
        lambda: one(call, BatchInferenceJob),
        lambda: platform.create_batch_inference_job(request),
    )


def list_batch_inference_jobs() -> Op[list[BatchInferenceJob]]:
    call = ApiRequest("GET", "/batch-inference/jobs")
    return per_dialect(
        lambda: many(call, BatchInferenceJob, "jobs"), platform.list_batch_inference_jobs
    )


def get_batch_inference_job(job_id: str) -> Op[BatchInferenceJob]:
    call = ApiRequest("GET", f"/batch-inference/jobs/{seg(job_id)}")
    return per_dialect(
        lambda: one(call, BatchInferenceJob), lambda: platform.get_batch_inference_job(job_id)
    )


def cancel_batch_inference_job(job_id: str) -> Op[BatchInferenceJob]:
    call = ApiRequest("POST", f"/batch-inference/jobs/{seg(job_id)}/cancel", idempotent=True)
    return per_dialect(
        lambda: one_or(call, BatchInferenceJob, lambda: get_batch_inference_job(job_id)),
        lambda: platform.cancel_batch_inference_job(job_id),
    )


def get_batch_inference_results(job_id: str) -> Op[BatchInferenceResults]:
    call = ApiRequest("GET", f"/batch-inference/jobs/{seg(job_id)}/results")
    return per_dialect(
        lambda: one(call, BatchInferenceResults),
        lambda: platform.get_batch_inference_results(job_id),
    )


def download_batch_results(job_id: str) -> Op[list[BatchOutputRow]]:
    """Every output row; a line that is not a valid row raises instead of being dropped."""
    results = yield from get_batch_inference_results(job_id)
    call = ApiRequest("GET", results.url, plane="external")
    response = yield call
    return parse_jsonl(call, response, BatchOutputRow)


# -- serving ------------------------------------------------------------------------------


def generate(deployment: str, request: GenerateRequest) -> Op[GenerateResponse]:
    return one(serving(deployment, "/generate", request.to_body()), GenerateResponse)


def generate_compat(deployment: str, request: GenerateRequest) -> Op[GenerateResponse]:
    """The lorax-client `/` route: its answer is a one-element array."""
    # lorax-client sends `stream`; on this route false asks for the JSON answer.
    call = serving(deployment, "/", {**request.to_body(), "stream": False})
    response = yield call
    items = parse_list(call, response, GenerateResponse, "data")
    if len(items) != 1:
        raise invalid_response(call, response, f"expected one result, got {len(items)}")
    return items[0]


def generate_stream(deployment: str, request: GenerateRequest) -> StreamOp[StreamEvent]:
    call = serving(deployment, "/generate_stream", request.to_body(), stream=True)
    return StreamOp(call, StreamEvent)


def chat_completion(deployment: str, request: ChatCompletionRequest) -> Op[ChatCompletionResponse]:
    body = request.to_body() | {"stream": False}
    return one(serving(deployment, "/v1/chat/completions", body), ChatCompletionResponse)


def chat_completion_stream(
    deployment: str, request: ChatCompletionRequest
) -> StreamOp[ChatCompletionChunk]:
    body = request.to_body() | {"stream": True}
    call = serving(deployment, "/v1/chat/completions", body, stream=True)
    return StreamOp(call, ChatCompletionChunk)


def completion(deployment: str, request: CompletionRequest) -> Op[CompletionResponse]:
    body = request.to_body() | {"stream": False}
    return one(serving(deployment, "/v1/completions", body), CompletionResponse)


def completion_stream(deployment: str, request: CompletionRequest) -> StreamOp[CompletionResponse]:
    body = request.to_body() | {"stream": True}
    call = serving(deployment, "/v1/completions", body, stream=True)
    return StreamOp(call, CompletionResponse)


def health(deployment: str) -> Op[bool]:
    """True when the deployment serves; False on its 503 health check failure."""
    call = ApiRequest(
        "GET", "/health", plane="serving", deployment=deployment, ok_statuses=frozenset({503})
    )
    response = yield call
    return bool(response.status_code < 400)


def info(deployment: str) -> Op[ServingInfo]:
    return one(ApiRequest("GET", "/info", plane="serving", deployment=deployment), ServingInfo)


# -- adapter versions: list, archive, unarchive, delete (retention) ------------------------
# The same paths in both dialects: the SDK's `adapters.archive|unarchive|delete` send
# `PUT|DELETE /v2/repos/{repo}/version/{tag}`, and the seed has no other route for it.


def list_adapter_versions(repo: str) -> Op[list[AdapterVersion]]:
    """Every version of `repo` (archived ones too), oldest first, each naming its repo."""
    found = yield from get_repo(repo)
    versions = [v if v.repo else v.model_copy(update={"repo": repo}) for v in found.versions]
    return sorted(versions, key=lambda v: v.version)


def set_adapter_version_archived(repo: str, version: int, archived: bool) -> Op[AdapterVersion]:
    body = AdapterVersionUpdate(archived=archived).to_body()
    # Setting a flag twice has the effect of setting it once: safe to retry.
    call = ApiRequest(
        "PUT", f"/repos/{seg(repo)}/version/{seg(version)}", json=body, idempotent=True
    )
    found = yield from one_or(call, AdapterVersion, lambda: get_adapter_version(repo, version))
    return found if found.repo else found.model_copy(update={"repo": repo})


def delete_adapter_version(repo: str, version: int) -> Op[None]:
    """Delete one version (its number is never reused). A retry after an unknown outcome may
    answer 404: the caller decides whether that means done."""
    call = ApiRequest("DELETE", f"/repos/{seg(repo)}/version/{seg(version)}", idempotent=True)
    return nothing(call)


# -- training records: cost estimate and timeline ------------------------------------------


def _no_record() -> Op[None]:
    """The seed spec has neither record: nothing is sent."""
    return None
    yield  # a generator that asks nothing


def estimate_finetuning_cost(request: FinetuningJobRequest) -> Op[FinetuningCostEstimate | None]:
    """The platform's estimate for `request`, or None where there is none (the seed spec,
    or a server without the route)."""
    return per_dialect(_no_record, lambda: platform.estimate_finetuning_cost(request))


def get_finetuning_timeline(job_id: str) -> Op[FinetuningTimeline | None]:
    """When each status of job `job_id` began, or None where the server keeps no timeline."""
    return per_dialect(_no_record, lambda: platform.get_finetuning_timeline(job_id))
