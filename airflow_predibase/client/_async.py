"""The asyncio client: runs the operations of `_operations` over an `httpx.AsyncClient`.

Same methods, names and results as `PredibaseClient` (documented there); each is awaited,
and the streaming ones return async iterators.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from types import TracebackType
from typing import Any, TypeVar, cast

import httpx
import tenacity
from pydantic import BaseModel

from airflow_predibase.client import _operations as ops
from airflow_predibase.client._base import (
    ApiRequest,
    ClientCore,
    build_request,
    check_response,
    default_timeout,
    transport_error,
)
from airflow_predibase.client._budget import BudgetRegistry, ClientBudgets, Ticket
from airflow_predibase.client._dialect import DialectAware, DialectChoice, detect
from airflow_predibase.client._exchange import AskDialect, Op, StreamOp
from airflow_predibase.client._retry import RetryPolicy, retryable
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
from airflow_predibase.client.models.training import (
    FinetuningCostEstimate,
    FinetuningTimeline,
    TrainingMetrics,
)
from airflow_predibase.client.settings import ClientSettings

T = TypeVar("T")
E = TypeVar("E", bound=BaseModel)


class AsyncPredibaseClient(DialectAware, ClientCore):
    """Typed, retrying Predibase client for asyncio (triggers).

    Arguments as for `PredibaseClient`, plus `limiter`: a semaphore bounding this client's
    in-flight requests; pass the same one to every client sharing an `http_client`, so
    thousands of triggers queue on it instead of inside the connection pool. `sleep` is
    awaited (default `asyncio.sleep`), also while waiting for the request budget's slot.
    `PredibaseHook.get_async_client()` wires the shared
    per-event-loop client and semaphore for you.
    """

    def __init__(
        self,
        settings: ClientSettings,
        *,
        http_client: httpx.AsyncClient | None = None,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], Awaitable[None]] | None = None,
        clock: Callable[[], float] | None = None,
        limiter: asyncio.Semaphore | None = None,
        on_dialect: Callable[[DialectChoice], None] | None = None,
        budgets: BudgetRegistry | None = None,
    ) -> None:
        super().__init__(settings, retry, clock)
        self._on_dialect = on_dialect
        self._owns_http = http_client is None
        self._http = http_client or httpx.AsyncClient(
            timeout=default_timeout(settings), limits=self.POOL_LIMITS
        )
        self._sleep = sleep or asyncio.sleep
        self._limiter: contextlib.AbstractAsyncContextManager[Any] = (
            limiter or contextlib.nullcontext()
        )
        self._budgets = ClientBudgets(settings.token, settings.request_budget, budgets)

    # -- sending: the only part that differs from the sync client ---------------------------

    async def _run(self, op: Op[T]) -> T:
        try:
            step = next(op)
            while True:
                step = op.send(await self._answer(step))
        except StopIteration as done:
            return cast(T, done.value)

    async def _answer(self, step: ApiRequest | AskDialect) -> httpx.Response | DialectChoice:
        if isinstance(step, AskDialect):
            return await self.resolve_dialect()
        return await self._send(step)

    async def resolve_dialect(self) -> DialectChoice:
        """The dialect this client speaks; under `auto`, probes the server once per process."""
        return self.dialect or self._detected(await self._run(detect()))

    async def _send(self, call: ApiRequest) -> httpx.Response:
        if self._wants_tenant(call):  # production's user record names the tenant
            self._tenant_asked = True
            auto = self.settings.dialect == "auto"
            self._take_tenant(await (self.resolve_dialect() if auto else self._run(detect())))
        request = build_request(self.settings, call)
        retry = self._retry_kwargs(call)  # before the first attempt: it starts the clock
        try:
            first: httpx.Response | httpx.HTTPError = await self._attempt(request, call.stream)
        except httpx.HTTPError as exc:
            first = exc
        # An answer the policy would not retry builds no retry loop: the common case (a
        # tenacity loop per request is ~5% of a busy triggerer's CPU, and garbage cycles).
        if isinstance(first, httpx.Response) and (
            first.status_code in call.ok_statuses
            or not retryable(idempotent=call.retry_safe, status=first.status_code, error=None)
        ):
            return check_response(call, first)
        pending: list[httpx.Response | httpx.HTTPError] = [first]

        async def attempt() -> httpx.Response:  # the first outcome, then real attempts
            if not pending:
                return await self._attempt(request, call.stream)
            outcome = pending.pop()
            if isinstance(outcome, httpx.HTTPError):
                raise outcome
            return outcome

        try:
            response: httpx.Response = await tenacity.AsyncRetrying(sleep=self._sleep, **retry)(
                attempt
            )
        except httpx.HTTPError as exc:
            raise transport_error(call, exc) from exc
        return check_response(call, response)

    async def _attempt(self, request: httpx.Request, stream: bool) -> httpx.Response:
        ticket = self._budgets.reserve(request)  # the connection's request budget
        while True:
            ticket = await self._wait_turn(ticket)  # no permit is held while waiting for it
            # The permit is held per attempt, not across backoff sleeps.
            async with self._limiter:
                if ticket is None or ticket.current:  # no 429 came while queueing for it
                    response = await self._http.send(request, stream=stream)
                    if stream and response.is_error:
                        await response.aread()  # the error body is needed; frees the socket
                    self._budgets.answered(response, ticket)
                    return response
            ticket = ticket.budget.recheck(ticket)

    async def _wait_turn(self, ticket: Ticket | None) -> Ticket | None:
        while ticket is not None and ticket.delay > 0:
            await self._sleep(ticket.delay)
            ticket = ticket.budget.recheck(ticket)  # a 429 meanwhile moves every slot
        return ticket

    async def _stream(self, op: StreamOp[E]) -> AsyncIterator[E]:
        response = await self._send(op.request)
        events = op.events()
        try:
            async for line in response.aiter_lines():
                for event in events.feed(line):
                    yield event
                if events.done:
                    return
            for event in events.end():
                yield event
        except httpx.HTTPError as exc:
            raise transport_error(op.request, exc) from exc
        finally:
            await response.aclose()

    async def close(self) -> None:
        """Close the HTTP client, if this client created it (never a shared one)."""
        if self._owns_http:
            await self._http.aclose()

    async def __aenter__(self) -> AsyncPredibaseClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # -- control plane ----------------------------------------------------------------------

    async def list_models(self) -> list[BaseModelInfo]:
        return await self._run(ops.list_models())

    async def create_dataset(self, request: DatasetRequest) -> Dataset:
        return await self._run(ops.create_dataset(request))

    async def list_datasets(self) -> list[Dataset]:
        return await self._run(ops.list_datasets())

    async def get_dataset(self, name: str) -> Dataset:
        return await self._run(ops.get_dataset(name))

    async def begin_dataset_upload(self, file_name: str, mime_type: str) -> DatasetUploadTarget:
        return await self._run(ops.begin_dataset_upload(file_name, mime_type))

    async def put_upload_bytes(
        self,
        presigned_url: str,
        content: bytes,
        mime_type: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        return await self._run(ops.put_upload_bytes(presigned_url, content, mime_type, headers))

    async def complete_dataset_upload(
        self, name: str, upload_token: str, description: str | None = None
    ) -> Dataset:
        return await self._run(ops.complete_dataset_upload(name, upload_token, description))

    async def upload_dataset(
        self,
        name: str,
        content: bytes,
        file_name: str,
        mime_type: str | None = None,
        description: str | None = None,
    ) -> Dataset:
        return await self._run(ops.upload_dataset(name, content, file_name, mime_type, description))

    async def create_repo(self, request: RepoRequest) -> Repo:
        return await self._run(ops.create_repo(request))

    async def list_repos(self) -> list[Repo]:
        return await self._run(ops.list_repos())

    async def get_repo(self, name: str) -> Repo:
        return await self._run(ops.get_repo(name))

    async def delete_repo(self, name: str) -> None:
        return await self._run(ops.delete_repo(name))

    async def get_adapter_version(self, repo: str, version: int) -> AdapterVersion:
        return await self._run(ops.get_adapter_version(repo, version))

    async def create_finetuning_job(self, request: FinetuningJobRequest) -> FinetuningJob:
        return await self._run(ops.create_finetuning_job(request))

    async def list_finetuning_jobs(self) -> list[FinetuningJob]:
        return await self._run(ops.list_finetuning_jobs())

    async def get_finetuning_job(self, job_id: str) -> FinetuningJob:
        return await self._run(ops.get_finetuning_job(job_id))

    async def cancel_finetuning_job(self, job_id: str) -> FinetuningJob:
        return await self._run(ops.cancel_finetuning_job(job_id))

    async def create_deployment(self, request: DeploymentRequest) -> Deployment:
        return await self._run(ops.create_deployment(request))

    async def list_deployments(self) -> list[Deployment]:
        return await self._run(ops.list_deployments())

    async def get_deployment(self, name: str) -> Deployment:
        return await self._run(ops.get_deployment(name))

    async def update_deployment(self, name: str, request: DeploymentUpdateRequest) -> Deployment:
        return await self._run(ops.update_deployment(name, request))

    async def delete_deployment(self, name: str) -> None:
        return await self._run(ops.delete_deployment(name))

    async def create_batch_inference_job(
        self, request: BatchInferenceJobRequest
    ) -> BatchInferenceJob:
        return await self._run(ops.create_batch_inference_job(request))

    async def list_batch_inference_jobs(self) -> list[BatchInferenceJob]:
        return await self._run(ops.list_batch_inference_jobs())

    async def get_batch_inference_job(self, job_id: str) -> BatchInferenceJob:
        return await self._run(ops.get_batch_inference_job(job_id))

    async def cancel_batch_inference_job(self, job_id: str) -> BatchInferenceJob:
        return await self._run(ops.cancel_batch_inference_job(job_id))

    async def get_batch_inference_results(self, job_id: str) -> BatchInferenceResults:
        return await self._run(ops.get_batch_inference_results(job_id))

    async def download_batch_results(self, job_id: str) -> list[BatchOutputRow]:
        return await self._run(ops.download_batch_results(job_id))

    # -- serving plane ----------------------------------------------------------------------

    async def generate(self, deployment: str, request: GenerateRequest) -> GenerateResponse:
        return await self._run(ops.generate(deployment, request))

    async def generate_compat(self, deployment: str, request: GenerateRequest) -> GenerateResponse:
        return await self._run(ops.generate_compat(deployment, request))

    def generate_stream(
        self, deployment: str, request: GenerateRequest
    ) -> AsyncIterator[StreamEvent]:
        return self._stream(ops.generate_stream(deployment, request))

    async def chat_completion(
        self, deployment: str, request: ChatCompletionRequest
    ) -> ChatCompletionResponse:
        return await self._run(ops.chat_completion(deployment, request))

    def chat_completion_stream(
        self, deployment: str, request: ChatCompletionRequest
    ) -> AsyncIterator[ChatCompletionChunk]:
        return self._stream(ops.chat_completion_stream(deployment, request))

    async def completion(self, deployment: str, request: CompletionRequest) -> CompletionResponse:
        return await self._run(ops.completion(deployment, request))

    def completion_stream(
        self, deployment: str, request: CompletionRequest
    ) -> AsyncIterator[CompletionResponse]:
        return self._stream(ops.completion_stream(deployment, request))

    async def health(self, deployment: str) -> bool:
        return await self._run(ops.health(deployment))

    async def info(self, deployment: str) -> ServingInfo:
        return await self._run(ops.info(deployment))

    # -- adapter versions (retention) -------------------------------------------------------

    async def list_adapter_versions(self, repo: str) -> list[AdapterVersion]:
        return await self._run(ops.list_adapter_versions(repo))

    async def archive_adapter_version(self, repo: str, version: int) -> AdapterVersion:
        return await self._run(ops.set_adapter_version_archived(repo, version, True))

    async def unarchive_adapter_version(self, repo: str, version: int) -> AdapterVersion:
        return await self._run(ops.set_adapter_version_archived(repo, version, False))

    async def delete_adapter_version(self, repo: str, version: int) -> None:
        return await self._run(ops.delete_adapter_version(repo, version))

    # -- training records: cost estimate, timeline, metrics ---------------------------------

    async def estimate_finetuning_cost(
        self, request: FinetuningJobRequest
    ) -> FinetuningCostEstimate | None:
        """The platform's cost estimate for `request` (US dollars), asked as the SDK asks it
        before a create; None where the server has none (the seed spec)."""
        return await self._run(ops.estimate_finetuning_cost(request))

    async def get_finetuning_timeline(self, job_id: str) -> FinetuningTimeline | None:
        """When each status of the job began; None where the server keeps no timeline."""
        return await self._run(ops.get_finetuning_timeline(job_id))

    async def read_finetuning_metrics(
        self, job_id: str, *, budget: float = 30.0
    ) -> list[TrainingMetrics] | None:
        """A finished job's metrics stream (production's websocket), one entry per message;
        None where it cannot be read. Read in a worker thread: it is one short exchange."""
        from airflow_predibase.client._metrics_stream import read_metrics

        if (await self.resolve_dialect()).dialect != "platform":
            return None
        return await asyncio.to_thread(read_metrics, self.settings, job_id, budget=budget)
