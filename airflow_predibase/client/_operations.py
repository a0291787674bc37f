"""Every Predibase API operation, written once, with no I/O.

An operation is a generator: it yields the `ApiRequest`s it needs, receives each
`httpx.Response` (already checked: errors were raised by the sender), and returns the parsed
result. Most yield once; the dataset upload and the batch results download chain several
exchanges with `yield from`. The sync and async clients only differ in how they send.

A streaming operation is a `StreamOp`: one request and the model each SSE event parses into.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass, replace
from typing import Any, Generic, TypeVar
from urllib.parse import urlencode

import httpx
from pydantic import BaseModel

from airflow_predibase import dataset_files
from airflow_predibase.client._base import (
    ApiRequest,
    decode,
    invalid_response,
    parse_jsonl,
    parse_list,
    parse_model,
    seg,
)
from airflow_predibase.client._sse import EventStream
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

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)

Op = Generator[ApiRequest, httpx.Response, T]

#: MIME types of the formats the platform accepts, by file extension.
UPLOAD_MIME_TYPES = {
    ext: dataset_files.UPLOAD_MIME_TYPES[fmt] for ext, fmt in dataset_files.EXTENSIONS.items()
}


@dataclass(frozen=True)
class StreamOp(Generic[M]):
    """A streaming operation: send `request`, parse each SSE event into `model`."""

    request: ApiRequest
    model: type[M]

    def events(self) -> EventStream[M]:
        return EventStream(self.model, method=self.request.method, path=self.request.shown_path)


def _one(call: ApiRequest, model: type[M]) -> Op[M]:
    response = yield call
    return parse_model(call, response, model)


#: A list longer than this many pages is answered as broken rather than read for ever.
MAX_PAGES = 10_000


def _page_call(call: ApiRequest, offset: int, limit: int | None) -> ApiRequest:
    """The request for the page at `offset`: the first as given; the next ones ask for the
    page size the server chose."""
    if not offset:
        return call
    query = ({"limit": limit} if limit else {}) | {"offset": offset}
    return replace(call, path=f"{call.path}?{urlencode(query)}")


def _paging(body: Any) -> list[dict[str, Any]]:
    """Where a list answer may keep its paging fields: the body, or its `data` object."""
    holders = [body] if isinstance(body, dict) else []
    if holders and isinstance(body.get("data"), dict):
        holders.append(body["data"])
    return holders


def _next_offset(call: ApiRequest, response: httpx.Response, offset: int, count: int) -> int | None:
    """Where the next page starts, or None after the last page.

    Offset paging, as the emulator answers (`?limit=&offset=`): the body (or its `data`
    object) names `next_offset` (null on the last page), or only `total`. An answer with
    neither is the whole list.
    """
    holders = _paging(decode(call, response))
    for holder in holders:
        for name in ("next_offset", "nextOffset"):
            if name in holder:
                following = holder[name]
                if following is None:
                    return None
                if not isinstance(following, int) or following <= offset:
                    why = f"{name} {following!r} does not move past offset {offset}"
                    raise invalid_response(call, response, why)
                return following
    for holder in holders:
        total = holder.get("total")
        if isinstance(total, int) and not isinstance(total, bool):
            return offset + count if count and offset + count < total else None
    return None


def _page_limit(call: ApiRequest, response: httpx.Response) -> int | None:
    for holder in _paging(decode(call, response)):
        limit = holder.get("limit")
        if isinstance(limit, int) and not isinstance(limit, bool) and limit > 0:
            return limit
    return None


def _many(call: ApiRequest, model: type[M], key: str) -> Op[list[M]]:
    """Every item of a list, page after page (see `_next_offset`).

    An item created or deleted while the pages are read can shift the pages: a caller that
    looks for one item must not rely on a single read (the operators also remember IDs).
    """
    items: list[M] = []
    offset, limit = 0, None
    for _ in range(MAX_PAGES):
        page_call = _page_call(call, offset, limit)
        response = yield page_call
        page = parse_list(page_call, response, model, key)
        items.extend(page)
        following = _next_offset(page_call, response, offset, len(page))
        if following is None:
            return items
        offset, limit = following, limit or _page_limit(page_call, response)
    raise invalid_response(page_call, response, f"more than {MAX_PAGES} pages")


def _nothing(call: ApiRequest) -> Op[None]:
    yield call


def _serving(deployment: str, path: str, body: dict[str, Any], **kw: Any) -> ApiRequest:
    # Serving calls change no state, so repeating one after a timeout or 503 is safe.
    return ApiRequest(
        "POST", path, plane="serving", deployment=deployment, json=body, idempotent=True, **kw
    )


# -- models -------------------------------------------------------------------------------


def list_models() -> Op[list[BaseModelInfo]]:
    return _many(ApiRequest("GET", "/models"), BaseModelInfo, "models")


# -- datasets -----------------------------------------------------------------------------


def create_dataset(request: DatasetRequest) -> Op[Dataset]:
    return _one(ApiRequest("POST", "/datasets", json=request.to_body()), Dataset)


def list_datasets() -> Op[list[Dataset]]:
    return _many(ApiRequest("GET", "/datasets"), Dataset, "datasets")


def get_dataset(name: str) -> Op[Dataset]:
    return _one(ApiRequest("GET", f"/datasets/{seg(name)}"), Dataset)


def begin_dataset_upload(file_name: str, mime_type: str) -> Op[DatasetUploadTarget]:
    body = DatasetUploadRequest(file_name=file_name, mime_type=mime_type).to_body()
    # It only hands out an upload URL, so a repeat is harmless.
    call = ApiRequest("POST", "/datasets/upload", json=body, idempotent=True)
    return _one(call, DatasetUploadTarget)


def put_upload_bytes(presigned_url: str, content: bytes, mime_type: str | None = None) -> Op[None]:
    headers = {"Content-Type": mime_type} if mime_type else {}
    return _nothing(
        ApiRequest("PUT", presigned_url, plane="external", content=content, headers=headers)
    )


def complete_dataset_upload(
    name: str, upload_token: str, description: str | None = None
) -> Op[Dataset]:
    body = DatasetUploadComplete(
        name=name, upload_token=upload_token, description=description
    ).to_body()
    # The server consumes the upload token: a blind retry would answer 404, not the dataset.
    return _one(ApiRequest("PUT", "/datasets/upload", json=body, idempotent=False), Dataset)


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
    yield from put_upload_bytes(target.presigned_url, content, mime_type)
    return (yield from complete_dataset_upload(name, target.upload_token, description))


# -- adapter repositories -----------------------------------------------------------------


def create_repo(request: RepoRequest) -> Op[Repo]:
    return _one(ApiRequest("POST", "/repos", json=request.to_body()), Repo)


def list_repos() -> Op[list[Repo]]:
    return _many(ApiRequest("GET", "/repos"), Repo, "repos")


def get_repo(name: str) -> Op[Repo]:
    return _one(ApiRequest("GET", f"/repos/{seg(name)}"), Repo)


def delete_repo(name: str) -> Op[None]:
    return _nothing(ApiRequest("DELETE", f"/repos/{seg(name)}"))


def get_adapter_version(repo: str, version: int) -> Op[AdapterVersion]:
    found = yield from _one(
        ApiRequest("GET", f"/repos/{seg(repo)}/version/{seg(version)}"), AdapterVersion
    )
    # Not every answer names the repo, and `adapter_id` needs it.
    return found if found.repo else found.model_copy(update={"repo": repo})


# -- fine-tuning jobs ---------------------------------------------------------------------


def create_finetuning_job(request: FinetuningJobRequest) -> Op[FinetuningJob]:
    return _one(ApiRequest("POST", "/finetuning/jobs", json=request.to_body()), FinetuningJob)


def list_finetuning_jobs() -> Op[list[FinetuningJob]]:
    return _many(ApiRequest("GET", "/finetuning/jobs"), FinetuningJob, "jobs")


def get_finetuning_job(job_id: str) -> Op[FinetuningJob]:
    return _one(ApiRequest("GET", f"/finetuning/jobs/{seg(job_id)}"), FinetuningJob)


def cancel_finetuning_job(job_id: str) -> Op[FinetuningJob]:
    # Cancelling twice has the effect of cancelling once: safe to retry.
    call = ApiRequest("POST", f"/finetuning/jobs/{seg(job_id)}/cancel", idempotent=True)
    return _one(call, FinetuningJob)


# -- deployments --------------------------------------------------------------------------


def create_deployment(request: DeploymentRequest) -> Op[Deployment]:
    return _one(ApiRequest("POST", "/deployments", json=request.to_body()), Deployment)


def list_deployments() -> Op[list[Deployment]]:
    return _many(ApiRequest("GET", "/deployments"), Deployment, "deployments")


def get_deployment(name: str) -> Op[Deployment]:
    return _one(ApiRequest("GET", f"/deployments/{seg(name)}"), Deployment)


def update_deployment(name: str, request: DeploymentUpdateRequest) -> Op[Deployment]:
    call = ApiRequest("PUT", f"/deployments/{seg(name)}", json=request.to_body())
    return _one(call, Deployment)


def delete_deployment(name: str) -> Op[None]:
    return _nothing(ApiRequest("DELETE", f"/deployments/{seg(name)}"))


# -- batch inference ----------------------------------------------------------------------


def create_batch_inference_job(request: BatchInferenceJobRequest) -> Op[BatchInferenceJob]:
    call = ApiRequest("POST", "/batch-inference/jobs", json=request.to_body())
    return _one(call, BatchInferenceJob)


def list_batch_inference_jobs() -> Op[list[BatchInferenceJob]]:
    return _many(ApiRequest("GET", "/batch-inference/jobs"), BatchInferenceJob, "jobs")


def get_batch_inference_job(job_id: str) -> Op[BatchInferenceJob]:
    return _one(ApiRequest("GET", f"/batch-inference/jobs/{seg(job_id)}"), BatchInferenceJob)


def cancel_batch_inference_job(job_id: str) -> Op[BatchInferenceJob]:
    call = ApiRequest("POST", f"/batch-inference/jobs/{seg(job_id)}/cancel", idempotent=True)
    return _one(call, BatchInferenceJob)


def get_batch_inference_results(job_id: str) -> Op[BatchInferenceResults]:
    call = ApiRequest("GET", f"/batch-inference/jobs/{seg(job_id)}/results")
    return _one(call, BatchInferenceResults)


def download_batch_results(job_id: str) -> Op[list[BatchOutputRow]]:
    """Every output row; a line that is not a valid row raises instead of being dropped."""
    results = yield from get_batch_inference_results(job_id)
    call = ApiRequest("GET", results.url, plane="external")
    response = yield call
    return parse_jsonl(call, response, BatchOutputRow)


# -- serving ------------------------------------------------------------------------------


def generate(deployment: str, request: GenerateRequest) -> Op[GenerateResponse]:
    return _one(_serving(deployment, "/generate", request.to_body()), GenerateResponse)


def generate_compat(deployment: str, request: GenerateRequest) -> Op[GenerateResponse]:
    """The lorax-client `/` route: its answer is a one-element array."""
    # lorax-client sends `stream`; on this route false asks for the JSON answer.
    call = _serving(deployment, "/", {**request.to_body(), "stream": False})
    response = yield call
    items = parse_list(call, response, GenerateResponse, "data")
    if len(items) != 1:
        raise invalid_response(call, response, f"expected one result, got {len(items)}")
    return items[0]


def generate_stream(deployment: str, request: GenerateRequest) -> StreamOp[StreamEvent]:
    call = _serving(deployment, "/generate_stream", request.to_body(), stream=True)
    return StreamOp(call, StreamEvent)


def chat_completion(deployment: str, request: ChatCompletionRequest) -> Op[ChatCompletionResponse]:
    body = request.to_body() | {"stream": False}
    return _one(_serving(deployment, "/v1/chat/completions", body), ChatCompletionResponse)


def chat_completion_stream(
    deployment: str, request: ChatCompletionRequest
) -> StreamOp[ChatCompletionChunk]:
    body = request.to_body() | {"stream": True}
    call = _serving(deployment, "/v1/chat/completions", body, stream=True)
    return StreamOp(call, ChatCompletionChunk)


def completion(deployment: str, request: CompletionRequest) -> Op[CompletionResponse]:
    body = request.to_body() | {"stream": False}
    return _one(_serving(deployment, "/v1/completions", body), CompletionResponse)


def completion_stream(deployment: str, request: CompletionRequest) -> StreamOp[CompletionResponse]:
    body = request.to_body() | {"stream": True}
    call = _serving(deployment, "/v1/completions", body, stream=True)
    return StreamOp(call, CompletionResponse)


def health(deployment: str) -> Op[bool]:
    """True when the deployment serves; False on its 503 health check failure."""
    call = ApiRequest(
        "GET", "/health", plane="serving", deployment=deployment, ok_statuses=frozenset({503})
    )
    response = yield call
    return response.status_code < 400


def info(deployment: str) -> Op[ServingInfo]:
    return _one(ApiRequest("GET", "/info", plane="serving", deployment=deployment), ServingInfo)
