"""Answer bodies in the platform's two dialects: LoRAX native and OpenAI-compatible.

Each builder goes through the client's wire models (see `wire.wire`), except the stream
events, whose null fields LoRAX always sends and lorax-client expects.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from airflow_predibase.client.models import (
    ChatCompletionChunk,
    ChatCompletionResponse,
    CompletionResponse,
    GenerateResponse,
    StreamEvent,
)
from airflow_predibase.emulator.model_behaviour import Generation, token_id, token_logprob
from airflow_predibase.emulator.wire import wire

_OPENAI_FINISH = {"eos_token": "stop", "stop_sequence": "stop", "length": "length"}


def _token(text: str) -> dict[str, Any]:
    return {"id": token_id(text), "text": text, "logprob": token_logprob(text), "special": False}


_EOS = {"id": 2, "text": "</s>", "logprob": 0.0, "special": True}


def sse(payload: Any, *, space: bool = False) -> bytes:
    """One server-sent event: a `data:` line and a blank line (LoRAX sends no space)."""
    text = payload if isinstance(payload, str) else json.dumps(payload, separators=(",", ":"))
    return f"data:{' ' if space else ''}{text}\n\n".encode()


# -- LoRAX native ----------------------------------------------------------------------------


def _details(gen: Generation) -> dict[str, Any]:
    return {
        "finish_reason": gen.finish_reason,
        "prompt_tokens": gen.prompt_tokens,
        "generated_tokens": gen.generated_tokens,
        "seed": None,
        "prefill": [],
        "tokens": [_token(t) for t in gen.tokens],
    }


def generate_response(gen: Generation, details: bool) -> dict[str, Any]:
    """The body of `/generate` (and the element of `/`'s one-element array)."""
    fields: dict[str, Any] = {"generated_text": gen.text}
    if details:
        fields["details"] = _details(gen)
    return wire(GenerateResponse, fields)


def stream_events(gen: Generation, details: bool) -> Iterator[dict[str, Any]]:
    """`/generate_stream` events: one per token; the last carries the text (and details)."""
    tokens = gen.tokens
    for index, text in enumerate(tokens):
        last = index == len(tokens) - 1
        event: dict[str, Any] = {"token": _token(text), "generated_text": None, "details": None}
        if last:
            event["generated_text"] = gen.text
            if details:
                event["details"] = {
                    "finish_reason": gen.finish_reason,
                    "prompt_tokens": gen.prompt_tokens,
                    "generated_tokens": gen.generated_tokens,
                    "seed": None,
                }
        StreamEvent.model_validate(event)
        yield event
    if not tokens:
        # Nothing to say still ends the stream properly: an end-of-sequence token.
        yield {
            "token": _EOS,
            "generated_text": "",
            "details": None
            if not details
            else {
                "finish_reason": gen.finish_reason,
                "prompt_tokens": gen.prompt_tokens,
                "generated_tokens": 0,
                "seed": None,
            },
        }


# -- OpenAI-compatible ---------------------------------------------------------------------


def usage(gen: Generation) -> dict[str, int]:
    return {
        "prompt_tokens": gen.prompt_tokens,
        "completion_tokens": gen.generated_tokens,
        "total_tokens": gen.prompt_tokens + gen.generated_tokens,
    }


def chat_completion(gen: Generation, model: str, ident: str, created: int) -> dict[str, Any]:
    return wire(
        ChatCompletionResponse,
        {
            "id": ident,
            "object": "chat.completion",
            "created": created,
            "model": model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": gen.text},
                    "finish_reason": _OPENAI_FINISH[gen.finish_reason],
                }
            ],
            "usage": usage(gen),
        },
    )


def chat_chunks(gen: Generation, model: str, ident: str, created: int) -> Iterator[dict[str, Any]]:
    """Role first, a chunk per token, then the finish reason with the usage."""
    head = {"id": ident, "object": "chat.completion.chunk", "created": created, "model": model}
    deltas: list[dict[str, Any]] = [{"role": "assistant", "content": ""}]
    deltas += [{"content": token} for token in gen.tokens]
    for delta in deltas:
        yield wire(ChatCompletionChunk, {**head, "choices": [{"index": 0, "delta": delta}]})
    yield wire(
        ChatCompletionChunk,
        {
            **head,
            "choices": [
                {"index": 0, "delta": {}, "finish_reason": _OPENAI_FINISH[gen.finish_reason]}
            ],
            "usage": usage(gen),
        },
    )


def completion(gen: Generation, model: str, ident: str, created: int) -> dict[str, Any]:
    return wire(
        CompletionResponse,
        {
            "id": ident,
            "object": "text_completion",
            "created": created,
            "model": model,
            "choices": [
                {"index": 0, "text": gen.text, "finish_reason": _OPENAI_FINISH[gen.finish_reason]}
            ],
            "usage": usage(gen),
        },
    )


def completion_chunks(
    gen: Generation, model: str, ident: str, created: int
) -> Iterator[dict[str, Any]]:
    head = {"id": ident, "object": "text_completion", "created": created, "model": model}
    for token in gen.tokens:
        yield wire(CompletionResponse, {**head, "choices": [{"index": 0, "text": token}]})
    yield wire(
        CompletionResponse,
        {
            **head,
            "choices": [
                {"index": 0, "text": "", "finish_reason": _OPENAI_FINISH[gen.finish_reason]}
            ],
            "usage": usage(gen),
        },
    )
