"""Serving plane: LoRAX generate/generate_stream and the OpenAI-compatible routes."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from airflow_predibase.client.models._base import RequestModel, WireModel

AdapterSource = Literal["pbase", "hub", "s3", "local"]


class GenerateParameters(RequestModel):
    """Generation parameters. `adapter_id` selects a LoRA on top of the base model."""

    max_new_tokens: int | None = Field(default=None, ge=1, description="Tokens to generate.")
    temperature: float | None = Field(default=None, ge=0, description="Sampling temperature.")
    top_p: float | None = Field(default=None, gt=0, le=1, description="Nucleus sampling.")
    top_k: int | None = Field(default=None, ge=1, description="Top-k sampling.")
    stop: list[str] | None = Field(default=None, description="Stop sequences.")
    details: bool | None = Field(default=None, description="Return token details.")
    adapter_id: str | None = Field(default=None, description="Adapter, e.g. `my-repo/1`.")
    adapter_source: AdapterSource | None = Field(default=None, description="pbase, hub, s3.")


class GenerateRequest(RequestModel):
    """Body of `/generate`, `/generate_stream` and the `/` route."""

    inputs: str = Field(description="The prompt, including any fine-tuning template.")
    parameters: GenerateParameters | None = Field(default=None, description="Parameters.")


class GenerateDetails(WireModel):
    """Token accounting for a generation."""

    finish_reason: str | None = Field(default=None, description="length, eos_token, stop_seq.")
    prompt_tokens: int | None = Field(default=None, description="Prompt tokens.")
    generated_tokens: int | None = Field(default=None, description="Generated tokens.")
    seed: int | None = Field(default=None, description="Sampling seed.")


class GenerateResponse(WireModel):
    """Reply of `/generate`."""

    generated_text: str = Field(description="The generated text.")
    details: GenerateDetails | None = Field(default=None, description="If asked for.")


class StreamToken(WireModel):
    """One generated token."""

    id: int = Field(description="Token ID.")
    text: str = Field(description="Token text.")
    logprob: float | None = Field(default=None, description="Log probability.")
    special: bool = Field(default=False, description="Special token.")


class StreamEvent(WireModel):
    """One `/generate_stream` event. The last one has `generated_text` (and `details`)."""

    token: StreamToken | None = Field(default=None, description="The token.")
    generated_text: str | None = Field(default=None, description="Whole text, last event.")
    details: GenerateDetails | None = Field(default=None, description="Last event, if asked.")


class ChatMessage(WireModel):
    """One chat message."""

    role: Literal["system", "user", "assistant"] = Field(description="Author role.")
    content: str = Field(description="Text.")


class Usage(WireModel):
    """Token usage."""

    prompt_tokens: int = Field(default=0, description="Prompt tokens.")
    completion_tokens: int = Field(default=0, description="Completion tokens.")
    total_tokens: int = Field(default=0, description="Sum of both.")


class ChatCompletionRequest(RequestModel):
    """Body of `/v1/chat/completions`. `model` is an adapter ID or `""` for the base."""

    messages: list[ChatMessage] = Field(description="The conversation.")
    model: str = Field(default="", description="Adapter `repo/N`, or empty for the base model.")
    max_tokens: int | None = Field(default=None, ge=1, description="Tokens to generate.")
    temperature: float | None = Field(default=None, ge=0, description="Sampling temperature.")
    top_p: float | None = Field(default=None, gt=0, le=1, description="Nucleus sampling.")
    stream: bool | None = Field(default=None, description="Set by the streaming methods.")


class ChatChoice(WireModel):
    """One chat completion choice."""

    index: int = Field(default=0, description="Choice index.")
    message: ChatMessage = Field(description="The answer.")
    finish_reason: str | None = Field(default=None, description="Why generation stopped.")


class ChatCompletionResponse(WireModel):
    """Reply of `/v1/chat/completions`."""

    id: str | None = Field(default=None, description="Completion ID.")
    object: str | None = Field(default=None, description="chat.completion.")
    created: int | None = Field(default=None, description="Unix time.")
    model: str | None = Field(default=None, description="Model or adapter used.")
    choices: list[ChatChoice] = Field(default_factory=list, description="Choices.")
    usage: Usage | None = Field(default=None, description="Token usage.")


class ChatDelta(WireModel):
    """Incremental message content in a stream chunk."""

    role: str | None = Field(default=None, description="Set on the first chunk.")
    content: str | None = Field(default=None, description="New text.")


class ChatChunkChoice(WireModel):
    """One choice of a chat stream chunk."""

    index: int = Field(default=0, description="Choice index.")
    delta: ChatDelta = Field(default_factory=ChatDelta, description="New content.")
    finish_reason: str | None = Field(default=None, description="Set on the last chunk.")


class ChatCompletionChunk(WireModel):
    """One chunk of a streamed chat completion. Usage arrives in the last chunk."""

    id: str | None = Field(default=None, description="Completion ID.")
    object: str | None = Field(default=None, description="chat.completion.chunk.")
    created: int | None = Field(default=None, description="Unix time.")
    model: str | None = Field(default=None, description="Model or adapter used.")
    choices: list[ChatChunkChoice] = Field(default_factory=list, description="Choices.")
    usage: Usage | None = Field(default=None, description="Token usage, last chunk.")


class CompletionRequest(RequestModel):
    """Body of `/v1/completions`."""

    prompt: str = Field(description="The prompt.")
    model: str = Field(default="", description="Adapter `repo/N`, or empty for the base model.")
    max_tokens: int | None = Field(default=None, ge=1, description="Tokens to generate.")
    temperature: float | None = Field(default=None, ge=0, description="Sampling temperature.")
    stream: bool | None = Field(default=None, description="Set by the streaming methods.")


class CompletionChoice(WireModel):
    """One text completion choice (also the shape of a stream chunk's choice)."""

    index: int = Field(default=0, description="Choice index.")
    text: str = Field(default="", description="Generated text.")
    finish_reason: str | None = Field(default=None, description="Why generation stopped.")


class CompletionResponse(WireModel):
    """Reply of `/v1/completions`, and the shape of each streamed chunk."""

    id: str | None = Field(default=None, description="Completion ID.")
    object: str | None = Field(default=None, description="text_completion.")
    created: int | None = Field(default=None, description="Unix time.")
    model: str | None = Field(default=None, description="Model or adapter used.")
    choices: list[CompletionChoice] = Field(default_factory=list, description="Choices.")
    usage: Usage | None = Field(default=None, description="Token usage.")


class ServingInfo(WireModel):
    """Reply of `GET /info`: what the deployment serves."""

    model_id: str | None = Field(default=None, description="Served base model.")
    extra: dict[str, Any] | None = Field(default=None, description="Anything else reported.")
