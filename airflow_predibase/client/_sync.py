"""The blocking client: runs the operations of `_operations` over an `httpx.Client`."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from types import TracebackType
from typing import TypeVar, cast

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
from airflow_predibase.client._budget import BudgetRegistry, ClientBudgets
from airflow_predibase.client._dialect import DialectAware, DialectChoice, detect
from airflow_predibase.client._exchange import AskDialect, Op, StreamOp
from airflow_predibase.client._retry import RetryPolicy
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


class PredibaseClient(DialectAware, ClientCore):
    """Typed, retrying Predibase client (blocking).

    Args:
        settings: where to connect and with which token.
        http_client: an `httpx.Client` to send through (tests pass one with a
            `MockTransport`); the client then does not close it. Timeouts come from
            `settings` per request either way.
        retry: the retry policy; default `RetryPolicy(max_attempts=settings.max_retries + 1)`.
        sleep: how to wait between attempts (default `time.sleep`).
        clock: monotonic seconds, for the total-time bound (default `time.monotonic`).
        on_dialect: called once with the `DialectChoice` when this client first knows which
            dialect it speaks (the hook logs it). `settings.dialect` forces one; under
            `auto` the first operation that needs it probes the server (once per process).
        budgets: where the request budgets of `settings.max_requests_per_second` live
            (default: the process's, shared by every client of the same host and token);
            tests pass a `BudgetRegistry` on a fake clock, with `sleep` advancing it.
    """

    def __init__(
        self,
        settings: ClientSettings,
        *,
        http_client: httpx.Client | None = None,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], None] | None = None,
        clock: Callable[[], float] | None = None,
        on_dialect: Callable[[DialectChoice], None] | None = None,
        budgets: BudgetRegistry | None = None,
    ) -> None:
        super().__init__(settings, retry, clock)
        self._on_dialect = on_dialect
        self._owns_http = http_client is None
        self._http = http_client or httpx.Client(
            timeout=default_timeout(settings), limits=self.POOL_LIMITS
        )
        self._sleep = sleep or time.sleep
        self._budgets = ClientBudgets(settings.token, settings.request_budget, budgets)

    # -- sending: the only part that differs from the async client -------------------------

    def _run(self, op: Op[T]) -> T:
        try:
            step = next(op)
            while True:
                step = op.send(self._answer(step))
        except StopIteration as done:
            return cast(T, done.value)

    def _answer(self, step: ApiRequest | AskDialect) -> httpx.Response | DialectChoice:
        return self.resolve_dialect() if isinstance(step, AskDialect) else self._send(step)

    def resolve_dialect(self) -> DialectChoice:
        """The dialect this client speaks; under `auto`, probes the server once per process."""
        return self.dialect or self._detected(self._run(detect()))

    def _send(self, call: ApiRequest) -> httpx.Response:
        if self._wants_tenant(call):  # production's user record names the tenant
            self._tenant_asked = True
            auto = self.settings.dialect == "auto"
            self._take_tenant(self.resolve_dialect() if auto else self._run(detect()))
        request = build_request(self.settings, call)
        retrying = tenacity.Retrying(sleep=self._sleep, **self._retry_kwargs(call))
        try:
            response = retrying(self._attempt, request, call.stream)
        except httpx.HTTPError as exc:
            raise transport_error(call, exc) from exc
        return check_response(call, response)

    def _attempt(self, request: httpx.Request, stream: bool) -> httpx.Response:
        ticket = self._budgets.reserve(request)  # the connection's request budget
        while ticket is not None and ticket.delay > 0:
            self._sleep(ticket.delay)
            ticket = ticket.budget.recheck(ticket)  # a 429 meanwhile moves every slot
        response = self._http.send(request, stream=stream)
        if stream and response.is_error:
            response.read()  # the error body is needed, and it releases the connection
        self._budgets.answered(response, ticket)
        return response

    def _stream(self, op: StreamOp[E]) -> Iterator[E]:
        response = self._send(op.request)
        events = op.events()
        try:
            for line in response.iter_lines():
                yield from events.feed(line)
                if events.done:
                    return
            yield from events.end()
        except httpx.HTTPError as exc:
            raise transport_error(op.request, exc) from exc
        finally:
            response.close()

    def close(self) -> None:
        """Close the HTTP client, if this client created it."""
        if self._owns_http:
            self._http.close()

    def __enter__(self) -> PredibaseClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- control plane ----------------------------------------------------------------------

    def list_models(self) -> list[BaseModelInfo]:
        """Base models the platform can fine-tune and serve."""
        return self._run(ops.list_models())

    def create_dataset(self, request: DatasetRequest) -> Dataset:
        """Connect a dataset from a source. Not retried if its outcome is unknown."""
        return self._run(ops.create_dataset(request))

    def list_datasets(self) -> list[Dataset]:
        return self._run(ops.list_datasets())

    def get_dataset(self, name: str) -> Dataset:
        return self._run(ops.get_dataset(name))

    def begin_dataset_upload(self, file_name: str, mime_type: str) -> DatasetUploadTarget:
        """Upload step 1: where to PUT the bytes, and the token for step 3."""
        return self._run(ops.begin_dataset_upload(file_name, mime_type))

    def put_upload_bytes(
        self,
        presigned_url: str,
        content: bytes,
        mime_type: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        """Upload step 2: a plain PUT of the bytes, without the token, with the step 1
        reply's `required_headers` as `headers`."""
        return self._run(ops.put_upload_bytes(presigned_url, content, mime_type, headers))

    def complete_dataset_upload(
        self, name: str, upload_token: str, description: str | None = None
    ) -> Dataset:
        """Upload step 3: turn the uploaded bytes into dataset `name`."""
        return self._run(ops.complete_dataset_upload(name, upload_token, description))

    def upload_dataset(
        self,
        name: str,
        content: bytes,
        file_name: str,
        mime_type: str | None = None,
        description: str | None = None,
    ) -> Dataset:
        """Upload steps 1-3 (at most 100 MB; CSV, JSONL, JSON or Parquet). Then poll the
        dataset until it is `connected`. `mime_type` defaults from the file extension."""
        return self._run(ops.upload_dataset(name, content, file_name, mime_type, description))

    def create_repo(self, request: RepoRequest) -> Repo:
        return self._run(ops.create_repo(request))

    def list_repos(self) -> list[Repo]:
        return self._run(ops.list_repos())

    def get_repo(self, name: str) -> Repo:
        return self._run(ops.get_repo(name))

    def delete_repo(self, name: str) -> None:
        return self._run(ops.delete_repo(name))

    def get_adapter_version(self, repo: str, version: int) -> AdapterVersion:
        """Adapter `repo/version`."""
        return self._run(ops.get_adapter_version(repo, version))

    def create_finetuning_job(self, request: FinetuningJobRequest) -> FinetuningJob:
        """Start a fine-tuning job. Raises OutcomeUnknownError rather than risk a duplicate."""
        return self._run(ops.create_finetuning_job(request))

    def list_finetuning_jobs(self) -> list[FinetuningJob]:
        return self._run(ops.list_finetuning_jobs())

    def get_finetuning_job(self, job_id: str) -> FinetuningJob:
        return self._run(ops.get_finetuning_job(job_id))

    def cancel_finetuning_job(self, job_id: str) -> FinetuningJob:
        return self._run(ops.cancel_finetuning_job(job_id))

    def create_deployment(self, request: DeploymentRequest) -> Deployment:
        return self._run(ops.create_deployment(request))

    def list_deployments(self) -> list[Deployment]:
        return self._run(ops.list_deployments())

    def get_deployment(self, name: str) -> Deployment:
        return self._run(ops.get_deployment(name))

    def update_deployment(self, name: str, request: DeploymentUpdateRequest) -> Deployment:
        """Change a deployment's settings (not its accelerator)."""
        return self._run(ops.update_deployment(name, request))

    def delete_deployment(self, name: str) -> None:
        return self._run(ops.delete_deployment(name))

    def create_batch_inference_job(self, request: BatchInferenceJobRequest) -> BatchInferenceJob:
        return self._run(ops.create_batch_inference_job(request))

    def list_batch_inference_jobs(self) -> list[BatchInferenceJob]:
        return self._run(ops.list_batch_inference_jobs())

    def get_batch_inference_job(self, job_id: str) -> BatchInferenceJob:
        return self._run(ops.get_batch_inference_job(job_id))

    def cancel_batch_inference_job(self, job_id: str) -> BatchInferenceJob:
        return self._run(ops.cancel_batch_inference_job(job_id))

    def get_batch_inference_results(self, job_id: str) -> BatchInferenceResults:
        """Where the results JSONL of a completed job can be fetched."""
        return self._run(ops.get_batch_inference_results(job_id))

    def download_batch_results(self, job_id: str) -> list[BatchOutputRow]:
        """Every result row (in any order: match on `custom_id`)."""
        return self._run(ops.download_batch_results(job_id))

    # -- serving plane ----------------------------------------------------------------------

    def generate(self, deployment: str, request: GenerateRequest) -> GenerateResponse:
        return self._run(ops.generate(deployment, request))

    def generate_compat(self, deployment: str, request: GenerateRequest) -> GenerateResponse:
        """The lorax-client `/` route; same result as `generate`."""
        return self._run(ops.generate_compat(deployment, request))

    def generate_stream(self, deployment: str, request: GenerateRequest) -> Iterator[StreamEvent]:
        """Token events; the last has `generated_text`. Sent when iteration starts."""
        return self._stream(ops.generate_stream(deployment, request))

    def chat_completion(
        self, deployment: str, request: ChatCompletionRequest
    ) -> ChatCompletionResponse:
        return self._run(ops.chat_completion(deployment, request))

    def chat_completion_stream(
        self, deployment: str, request: ChatCompletionRequest
    ) -> Iterator[ChatCompletionChunk]:
        return self._stream(ops.chat_completion_stream(deployment, request))

    def completion(self, deployment: str, request: CompletionRequest) -> CompletionResponse:
        return self._run(ops.completion(deployment, request))

    def completion_stream(
        self, deployment: str, request: CompletionRequest
    ) -> Iterator[CompletionResponse]:
        return self._stream(ops.completion_stream(deployment, request))

    def health(self, deployment: str) -> bool:
        """True if the deployment serves; False if its health check fails (503)."""
        return self._run(ops.health(deployment))

    def info(self, deployment: str) -> ServingInfo:
        return self._run(ops.info(deployment))

    # -- adapter versions (retention) -------------------------------------------------------

    def list_adapter_versions(self, repo: str) -> list[AdapterVersion]:
        """Every version of `repo`, archived ones too, oldest first."""
        return self._run(ops.list_adapter_versions(repo))

    def archive_adapter_version(self, repo: str, version: int) -> AdapterVersion:
        """Archive `repo/version` (hidden, weights kept; undo with `unarchive_adapter_version`)."""
        return self._run(ops.set_adapter_version_archived(repo, version, True))

    def unarchive_adapter_version(self, repo: str, version: int) -> AdapterVersion:
        return self._run(ops.set_adapter_version_archived(repo, version, False))

    def delete_adapter_version(self, repo: str, version: int) -> None:
        """Delete `repo/version` for good; its number is never reused."""
        return self._run(ops.delete_adapter_version(repo, version))

    # -- training records: cost estimate, timeline, metrics ---------------------------------

    def estimate_finetuning_cost(
        self, request: FinetuningJobRequest
    ) -> FinetuningCostEstimate | None:
        """The platform's cost estimate for `request` (US dollars), asked as the SDK asks it
        before a create; None where the server has none (the seed spec)."""
        return self._run(ops.estimate_finetuning_cost(request))

    def get_finetuning_timeline(self, job_id: str) -> FinetuningTimeline | None:
        """When each status of the job began; None where the server keeps no timeline."""
        return self._run(ops.get_finetuning_timeline(job_id))

    def read_finetuning_metrics(
        self, job_id: str, *, budget: float = 30.0
    ) -> list[TrainingMetrics] | None:
        """A finished job's metrics stream (production's websocket), one entry per message;
        None where it cannot be read (the seed spec, no `websockets` package, a refusal).
        Blocking only: the operator reads it on the worker once the job is over."""
        from airflow_predibase.client._metrics_stream import read_metrics

        if self.resolve_dialect().dialect != "platform":
            return None
        return read_metrics(self.settings, job_id, budget=budget)
