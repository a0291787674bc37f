"""The serving plane: `/{tenant}/deployments/v2/llms/{deployment}/...`.

LoRAX native routes (`/generate`, `/generate_stream`, `/` as lorax-client calls it,
`/health`, `/info`) and the OpenAI-compatible `/v1/chat/completions` and `/v1/completions`.
A tenant other than the emulator's answers 404: as far as this server knows, that tenant
has no deployments at all.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterable, Iterator
from typing import Any

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from airflow_predibase.client.models import (
    ChatCompletionRequest,
    CompletionRequest,
    GenerateParameters,
    GenerateRequest,
    ServingInfo,
)
from airflow_predibase.emulator import formats
from airflow_predibase.emulator.backend import Backend
from airflow_predibase.emulator.errors import ApiError
from airflow_predibase.emulator.faults import FaultRule
from airflow_predibase.emulator.model_behaviour import Generation, generate
from airflow_predibase.emulator.resources.batch import chat_prompt
from airflow_predibase.emulator.resources.inference import answer
from airflow_predibase.emulator.wire import json_response, parse_body, require_text, wire

PREFIX = "/{tenant}/deployments/v2/llms/{deployment}"


def _stop(extra: dict[str, Any] | None) -> list[str] | None:
    """OpenAI's `stop`: a string or a list of them, passed through as an extra field."""
    stop = (extra or {}).get("stop")
    if isinstance(stop, str):
        return [stop]
    if isinstance(stop, list) and all(isinstance(s, str) for s in stop):
        return stop
    return None


def _event_stream(
    events: Iterable[Any], fault: FaultRule | None, *, openai: bool
) -> AsyncIterator[bytes]:
    """SSE bytes; with a `stream_error` fault, an in-band error after some events."""

    async def produce() -> AsyncIterator[bytes]:
        for sent, event in enumerate(events):
            if fault is not None and sent >= fault.after_tokens:
                message = fault.message or "Request failed during generation: emulated fault"
                error = {"error": message, "error_type": "incomplete_generation"}
                yield formats.sse(error, space=openai)
                return
            yield formats.sse(event, space=openai)
        if openai:
            yield formats.sse("[DONE]", space=True)

    return produce()


def _sse_response(body: AsyncIterator[bytes]) -> StreamingResponse:
    return StreamingResponse(
        body, media_type="text/event-stream", headers={"Cache-Control": "no-cache"}
    )


class ServingRoutes:
    def __init__(self, backend: Backend) -> None:
        self.backend = backend

    def routes(self) -> list[BaseRoute]:
        return [
            Route(PREFIX + "/generate", self.generate, methods=["POST"]),
            Route(PREFIX + "/generate_stream", self.generate_stream, methods=["POST"]),
            Route(PREFIX, self.compat, methods=["POST"]),
            Route(PREFIX + "/", self.compat, methods=["POST"]),
            Route(PREFIX + "/health", self.health, methods=["GET"]),
            Route(PREFIX + "/info", self.info, methods=["GET"]),
            Route(PREFIX + "/v1/chat/completions", self.chat, methods=["POST"]),
            Route(PREFIX + "/v1/completions", self.completions, methods=["POST"]),
        ]

    # -- shared steps ---------------------------------------------------------------------

    def _check_tenant(self, request: Request) -> str:
        tenant = request.path_params["tenant"]
        if tenant != self.backend.config.tenant:
            raise ApiError(404, f"tenant {tenant!r} not found", error_type="not_found")
        return str(request.path_params["deployment"])

    async def _native(
        self, request: Request, operation_id: str
    ) -> tuple[GenerateRequest, Generation]:
        name = self._check_tenant(request)
        body = await parse_body(request, GenerateRequest, self.backend.schemas, operation_id)
        require_text(body.inputs, "inputs")
        deployment = await self.backend.deployments.wake(name)
        params = body.parameters or GenerateParameters()
        reply = answer(
            self.backend.repos,
            deployment["base_model"],
            params.adapter_id,
            body.inputs,
            adapter_source=params.adapter_source,
            deployment=name,
        )
        return body, generate(reply, body.inputs, params.max_new_tokens, params.stop)

    def _stream_fault(self, request: Request) -> FaultRule | None:
        return self.backend.faults.take_stream_error(request.method, request.url.path)

    def _native_stream(self, request: Request, body: GenerateRequest, gen: Generation) -> Response:
        details = bool(body.parameters and body.parameters.details)
        events = formats.stream_events(gen, details)
        return _sse_response(_event_stream(events, self._stream_fault(request), openai=False))

    # -- LoRAX native ---------------------------------------------------------------------

    async def generate(self, request: Request) -> Response:
        body, gen = await self._native(request, "generate")
        details = bool(body.parameters and body.parameters.details)
        return json_response(formats.generate_response(gen, details))

    async def generate_stream(self, request: Request) -> Response:
        body, gen = await self._native(request, "generateStream")
        return self._native_stream(request, body, gen)

    async def compat(self, request: Request) -> Response:
        """lorax-client's route: `stream` in the body picks SSE or a one-element array."""
        body, gen = await self._native(request, "generateCompat")
        if (body.model_extra or {}).get("stream") is True:
            return self._native_stream(request, body, gen)
        details = bool(body.parameters and body.parameters.details)
        return json_response([formats.generate_response(gen, details)])

    async def health(self, request: Request) -> Response:
        name = self._check_tenant(request)
        _, status = self.backend.deployments.lookup(name)
        if not status.is_serving:
            raise ApiError(503, f"deployment {name!r} is {status}, not serving")
        return json_response({})

    async def info(self, request: Request) -> Response:
        name = self._check_tenant(request)
        deployment, _ = self.backend.deployments.lookup(name)
        model = self.backend.config.base_model(deployment["base_model"])
        context = (model.context_window if model else None) or 8192
        fields = {
            "model_id": deployment["base_model"],
            "model_sha": None,
            "model_dtype": "torch.float16",
            "model_device_type": "cuda",
            "max_concurrent_requests": 128,
            "max_input_length": context - 1,
            "max_total_tokens": context,
            "max_stop_sequences": 4,
            "version": "emulator",
            "sha": None,
            "docker_label": None,
        }
        return json_response(wire(ServingInfo, fields))

    # -- OpenAI-compatible ----------------------------------------------------------------

    def _ident(self, prefix: str) -> tuple[str, int]:
        return f"{prefix}-{uuid.uuid4().hex[:24]}", int(self.backend.now())

    def _openai_stream(self, request: Request, chunks: Iterator[dict[str, Any]]) -> Response:
        return _sse_response(_event_stream(chunks, self._stream_fault(request), openai=True))

    async def chat(self, request: Request) -> Response:
        name = self._check_tenant(request)
        schemas = self.backend.schemas
        body = await parse_body(request, ChatCompletionRequest, schemas, "createChatCompletion")
        if not body.messages:
            raise ApiError(422, "field 'messages': must hold at least one message")
        deployment = await self.backend.deployments.wake(name)
        base = deployment["base_model"]
        question, text = chat_prompt(body)
        reply = answer(self.backend.repos, base, body.model, question, deployment=name)
        gen = generate(reply, text, body.max_tokens, _stop(body.model_extra))
        ident, created = self._ident("chatcmpl")
        model = body.model or base
        if body.stream:
            return self._openai_stream(request, formats.chat_chunks(gen, model, ident, created))
        return json_response(formats.chat_completion(gen, model, ident, created))

    async def completions(self, request: Request) -> Response:
        name = self._check_tenant(request)
        schemas = self.backend.schemas
        body = await parse_body(request, CompletionRequest, schemas, "createCompletion")
        deployment = await self.backend.deployments.wake(name)
        base = deployment["base_model"]
        reply = answer(self.backend.repos, base, body.model, body.prompt, deployment=name)
        gen = generate(reply, body.prompt, body.max_tokens, _stop(body.model_extra))
        ident, created = self._ident("cmpl")
        model = body.model or base
        if body.stream:
            return self._openai_stream(
                request, formats.completion_chunks(gen, model, ident, created)
            )
        return json_response(formats.completion(gen, model, ident, created))
