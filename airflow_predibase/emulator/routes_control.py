"""The control plane, mounted under `/v2`: HTTP in, resource services, JSON out."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from airflow_predibase.client.models import (
    BatchInferenceJobRequest,
    DatasetRequest,
    DatasetUploadComplete,
    DatasetUploadRequest,
    DeploymentRequest,
    DeploymentUpdateRequest,
    FinetuningJobRequest,
    RepoRequest,
)
from airflow_predibase.emulator.backend import Backend
from airflow_predibase.emulator.errors import ApiError
from airflow_predibase.emulator.wire import M, json_response, parse_body, wire


def origin(request: Request) -> str:
    """`scheme://host:port` as the client reached us, for the URLs we hand out."""
    return f"{request.url.scheme}://{request.url.netloc}"


def _query_int(request: Request, name: str, minimum: int) -> int | None:
    raw = request.query_params.get(name)
    if raw is None:
        return None
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 9 or int(raw) < minimum:
        raise ApiError(
            400, f"query parameter {name!r} must be an integer >= {minimum}, got {raw!r}"
        )
    return int(raw)


def paged(request: Request, items: list[dict[str, Any]], page_size: int | None) -> Response:
    """A list answer: `{"data": [...]}`, one page of it when the client or the emulator asks.

    `?limit=` and `?offset=` page as the platform's list routes do (the official SDK sends
    `?limit=`); `page_size` (the control API's `PUT /__emulator__/pagination`) caps every
    page, whatever `limit` asks. A paged answer also carries `total`, `offset`, `limit` and
    `next_offset` (null on the last page); an unpaged one is the bare `{"data": [...]}`.
    """
    limit = _query_int(request, "limit", 1)
    offset = _query_int(request, "offset", 0)
    if limit is None and offset is None and page_size is None:
        return json_response({"data": items})
    if page_size is not None:
        limit = page_size if limit is None else min(limit, page_size)
    start = offset or 0
    page = items[start:] if limit is None else items[start : start + limit]
    end = start + len(page)
    return json_response(
        {
            "data": page,
            "total": len(items),
            "offset": start,
            "limit": limit,
            "next_offset": end if end < len(items) else None,
        }
    )


class ControlRoutes:
    """One method per operation; every rule lives in the resource services."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend

    async def _body(self, request: Request, model: type[M], operation_id: str) -> M:
        return await parse_body(request, model, self.backend.schemas, operation_id)

    def _listed(self, request: Request, items: list[dict[str, Any]]) -> Response:
        return paged(request, items, self.backend.page_size)

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/finetuning/jobs", self.create_job, methods=["POST"]),
            Route("/finetuning/jobs", self.list_jobs, methods=["GET"]),
            Route("/finetuning/jobs/{job_id}", self.get_job, methods=["GET"]),
            Route("/finetuning/jobs/{job_id}/cancel", self.cancel_job, methods=["POST"]),
            Route("/repos", self.create_repo, methods=["POST"]),
            Route("/repos", self.list_repos, methods=["GET"]),
            Route("/repos/{repo}", self.get_repo, methods=["GET"]),
            Route("/repos/{repo}", self.delete_repo, methods=["DELETE"]),
            Route("/repos/{repo}/version/{version}", self.get_version, methods=["GET"]),
            Route("/deployments", self.create_deployment, methods=["POST"]),
            Route("/deployments", self.list_deployments, methods=["GET"]),
            Route("/deployments/{name}", self.get_deployment, methods=["GET"]),
            Route("/deployments/{name}", self.update_deployment, methods=["PUT"]),
            Route("/deployments/{name}", self.delete_deployment, methods=["DELETE"]),
            Route("/datasets", self.connect_dataset, methods=["POST"]),
            Route("/datasets", self.list_datasets, methods=["GET"]),
            Route("/datasets/upload", self.start_upload, methods=["POST"]),
            Route("/datasets/upload", self.complete_upload, methods=["PUT"]),
            Route("/datasets/{name}", self.get_dataset, methods=["GET"]),
            Route("/models", self.list_models, methods=["GET"]),
            Route("/batch-inference/jobs", self.create_batch, methods=["POST"]),
            Route("/batch-inference/jobs", self.list_batches, methods=["GET"]),
            Route("/batch-inference/jobs/{job_id}", self.get_batch, methods=["GET"]),
            Route("/batch-inference/jobs/{job_id}/cancel", self.cancel_batch, methods=["POST"]),
            Route("/batch-inference/jobs/{job_id}/results", self.batch_results, methods=["GET"]),
        ]

    # -- fine-tuning ----------------------------------------------------------------------

    async def create_job(self, request: Request) -> Response:
        body = await self._body(request, FinetuningJobRequest, "createFinetuningJob")
        return json_response(self.backend.finetuning.create(body))

    async def list_jobs(self, request: Request) -> Response:
        return self._listed(request, self.backend.finetuning.listed_views())

    async def get_job(self, request: Request) -> Response:
        return json_response(self.backend.finetuning.get(request.path_params["job_id"]))

    async def cancel_job(self, request: Request) -> Response:
        return json_response(self.backend.finetuning.cancel(request.path_params["job_id"]))

    # -- adapter repositories -------------------------------------------------------------

    async def create_repo(self, request: Request) -> Response:
        body = await self._body(request, RepoRequest, "createRepo")
        return json_response(self.backend.repos.create(body))

    async def list_repos(self, request: Request) -> Response:
        return self._listed(request, self.backend.repos.listed_views())

    async def get_repo(self, request: Request) -> Response:
        return json_response(self.backend.repos.get(request.path_params["repo"]))

    async def delete_repo(self, request: Request) -> Response:
        return json_response(self.backend.repos.delete(request.path_params["repo"]))

    async def get_version(self, request: Request) -> Response:
        raw = request.path_params["version"]
        if not (raw.isascii() and raw.isdigit()) or int(raw) < 1:
            raise ApiError(400, f"version must be a positive integer, got {raw!r}")
        return json_response(self.backend.repos.version(request.path_params["repo"], int(raw)))

    # -- deployments ----------------------------------------------------------------------

    async def create_deployment(self, request: Request) -> Response:
        body = await self._body(request, DeploymentRequest, "createDeployment")
        return json_response(self.backend.deployments.create(body))

    async def list_deployments(self, request: Request) -> Response:
        return self._listed(request, self.backend.deployments.listed_views())

    async def get_deployment(self, request: Request) -> Response:
        return json_response(self.backend.deployments.get(request.path_params["name"]))

    async def update_deployment(self, request: Request) -> Response:
        body = await self._body(request, DeploymentUpdateRequest, "updateDeployment")
        return json_response(self.backend.deployments.update(request.path_params["name"], body))

    async def delete_deployment(self, request: Request) -> Response:
        return json_response(self.backend.deployments.delete(request.path_params["name"]))

    # -- datasets -------------------------------------------------------------------------

    async def connect_dataset(self, request: Request) -> Response:
        body = await self._body(request, DatasetRequest, "createDataset")
        return json_response(await self.backend.datasets.connect(body))

    async def list_datasets(self, request: Request) -> Response:
        return self._listed(request, self.backend.datasets.listed_views())

    async def start_upload(self, request: Request) -> Response:
        body = await self._body(request, DatasetUploadRequest, "createDatasetUpload")
        return json_response(self.backend.datasets.start_upload(body, origin(request)))

    async def complete_upload(self, request: Request) -> Response:
        body = await self._body(request, DatasetUploadComplete, "completeDatasetUpload")
        return json_response(await self.backend.datasets.complete_upload(body))

    async def get_dataset(self, request: Request) -> Response:
        return json_response(self.backend.datasets.get(request.path_params["name"]))

    # -- models ---------------------------------------------------------------------------

    async def list_models(self, request: Request) -> Response:
        models = self.backend.config.base_models
        return self._listed(request, [wire(type(m), m.model_dump()) for m in models])

    # -- batch inference ------------------------------------------------------------------

    async def create_batch(self, request: Request) -> Response:
        body = await self._body(request, BatchInferenceJobRequest, "createBatchInferenceJob")
        return json_response(self.backend.batch.create(body))

    async def list_batches(self, request: Request) -> Response:
        return self._listed(request, self.backend.batch.listed_views())

    async def get_batch(self, request: Request) -> Response:
        return json_response(self.backend.batch.get(request.path_params["job_id"]))

    async def cancel_batch(self, request: Request) -> Response:
        return json_response(self.backend.batch.cancel(request.path_params["job_id"]))

    async def batch_results(self, request: Request) -> Response:
        job_id = request.path_params["job_id"]
        return json_response(self.backend.batch.results(job_id, origin(request)))
