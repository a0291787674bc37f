"""Online inference on a deployment: one short serving call per prompt."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import BaseOperator

from airflow_predibase.client.models import (
    ChatCompletionRequest,
    ChatMessage,
    GenerateParameters,
    GenerateRequest,
)

if TYPE_CHECKING:
    from airflow_predibase.client import PredibaseClient

MODES = ("generate", "chat")

#: A streamed line is logged once it holds this many characters, or a newline, or after
#: `_FLUSH_SECONDS`: readable lines rather than one log record per token.
_LINE_CHARS = 100
_FLUSH_SECONDS = 2.0


def _positive_int(name: str, value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a whole number >= 1, got {value!r}")
    return value


def _number(
    name: str, value: Any, *, low: float, high: float, low_open: bool = False
) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"{name} must be a number, got {value!r}")
    if value > high or value < low or (low_open and value == low):
        bound = f"> {low:g}" if low_open else f">= {low:g}"
        raise ValueError(f"{name} must be {bound} and <= {high:g}, got {value!r}")
    return float(value)


def _stop_list(value: Any) -> list[str] | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list | tuple) or not all(isinstance(s, str) and s for s in value):
        raise ValueError(f"stop must be a string or a list of non-empty strings, got {value!r}")
    return list(value)


class PredibaseGenerateOperator(BaseOperator):
    """Generate text on a Predibase deployment, with its base model or an adapter.

    One serving call per prompt, on the worker (a short call: this operator never defers).
    The result is a dict per prompt: ``prompt``, ``text``, ``finish_reason``,
    ``prompt_tokens``, ``generated_tokens``, ``adapter_id`` and ``mode``. With one prompt
    (a string) the task returns that dict; with a list of prompts, a list of them in the
    same order. With `output_path`, the dicts are written there as JSON Lines and the task
    returns the path instead.

    :param deployment: the deployment to serve from (templated).
    :param prompts: a prompt, or a list of prompts (templated). In ``generate`` mode each is
        sent as is, so include any template the adapter was fine-tuned with; in ``chat``
        mode each is the user message.
    :param mode: ``"generate"`` (LoRAX ``/generate``) or ``"chat"`` (the OpenAI-compatible
        ``/v1/chat/completions``, which applies the model's chat template).
    :param adapter_id: ``"<repo>/<version>"`` to generate with an adapter; None (default)
        for the deployment's base model (templated).
    :param system_prompt: ``chat`` mode only: a system message put before each prompt
        (templated).
    :param max_new_tokens: tokens to generate at most, >= 1.
    :param temperature: sampling temperature, 0 to 2 (0: greedy).
    :param top_p: nucleus sampling, above 0 and at most 1.
    :param top_k: ``generate`` mode only: sample among the k likeliest tokens, >= 1.
    :param stop: a stop sequence, or a list of them.
    :param stream: stream the tokens and log them as they arrive, in lines of about 100
        characters (or at each newline, or every 2 s), prefixed ``[i/n]``.
    :param output_path: write the results as JSON Lines to this local path or
        `ObjectStoragePath` (``s3://...``, ``file://...``; templated) and return the path.
    :param predibase_conn_id: the Airflow connection.
    """

    template_fields: Sequence[str] = (
        "deployment",
        "prompts",
        "adapter_id",
        "system_prompt",
        "output_path",
    )
    ui_color = "#f0e4ff"

    def __init__(
        self,
        *,
        deployment: str,
        prompts: str | list[str],
        mode: str = "generate",
        adapter_id: str | None = None,
        system_prompt: str | None = None,
        max_new_tokens: int | None = None,
        temperature: float | None = None,
        top_p: float | None = None,
        top_k: int | None = None,
        stop: str | list[str] | None = None,
        stream: bool = False,
        output_path: Any = None,
        predibase_conn_id: str = "predibase_default",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
        if mode == "generate" and system_prompt is not None:
            raise ValueError(
                'system_prompt is for mode="chat"; in generate mode put it in the prompt'
            )
        if mode == "chat" and top_k is not None:
            raise ValueError('top_k is a generate-mode parameter; mode="chat" does not take it')
        self.deployment = deployment
        self.prompts = prompts
        self.mode = mode
        self.adapter_id = adapter_id
        self.system_prompt = system_prompt
        self.max_new_tokens = _positive_int("max_new_tokens", max_new_tokens)
        self.temperature = _number("temperature", temperature, low=0.0, high=2.0)
        self.top_p = _number("top_p", top_p, low=0.0, high=1.0, low_open=True)
        self.top_k = _positive_int("top_k", top_k)
        self.stop = _stop_list(stop)
        self.stream = bool(stream)
        self.output_path = output_path
        self.predibase_conn_id = predibase_conn_id

    # -- running ----------------------------------------------------------------------------

    def execute(self, context: Any) -> Any:
        prompts = self._prompt_list()
        adapter = self.adapter_id or None
        if adapter is not None and (not isinstance(adapter, str) or "/" not in adapter):
            raise ValueError(f'adapter_id must be "<repo>/<version>", got {adapter!r}')
        from airflow_predibase.hooks.predibase import PredibaseHook

        client = PredibaseHook(predibase_conn_id=self.predibase_conn_id).get_client()
        self.log.info(
            "%s on deployment %s with %s: %d prompt(s)",
            self.mode,
            self.deployment,
            adapter or "the base model",
            len(prompts),
        )
        with client:
            results = [
                self._one(client, prompt, adapter, f"[{i}/{len(prompts)}]")
                for i, prompt in enumerate(prompts, 1)
            ]
        if self.output_path:
            return self._write(results)
        return results if isinstance(self.prompts, list | tuple) else results[0]

    def _prompt_list(self) -> list[str]:
        prompts = self.prompts
        items = list(prompts) if isinstance(prompts, list | tuple) else [prompts]
        if not items:
            raise ValueError("prompts is empty: give a prompt or a list of prompts")
        for item in items:
            if not isinstance(item, str) or not item.strip():
                raise ValueError(f"each prompt must be a non-empty string, got {item!r}")
        return items

    def _one(
        self, client: PredibaseClient, prompt: str, adapter: str | None, tag: str
    ) -> dict[str, Any]:
        if self.mode == "generate":
            result = self._generate(client, prompt, adapter, tag)
        else:
            result = self._chat(client, prompt, adapter, tag)
        self.log.info(
            "%s %s tokens in, %s out, finished by %s",
            tag,
            result["prompt_tokens"],
            result["generated_tokens"],
            result["finish_reason"],
        )
        return {"prompt": prompt, **result, "adapter_id": adapter, "mode": self.mode}

    def _generate(
        self, client: PredibaseClient, prompt: str, adapter: str | None, tag: str
    ) -> dict[str, Any]:
        request = GenerateRequest(
            inputs=prompt,
            parameters=GenerateParameters(
                max_new_tokens=self.max_new_tokens,
                temperature=self.temperature,
                top_p=self.top_p,
                top_k=self.top_k,
                stop=self.stop,
                details=True,
                adapter_id=adapter,
            ),
        )
        if not self.stream:
            answer = client.generate(self.deployment, request)
            details = answer.details
            text = answer.generated_text
        else:
            details, text = None, ""
            with _LineLog(self.log.info, tag) as lines:
                for event in client.generate_stream(self.deployment, request):
                    if event.token is not None and not event.token.special:
                        lines.add(event.token.text)
                    if event.generated_text is not None:
                        text, details = event.generated_text, event.details
        return {
            "text": text,
            "finish_reason": details.finish_reason if details else None,
            "prompt_tokens": details.prompt_tokens if details else None,
            "generated_tokens": details.generated_tokens if details else None,
        }

    def _chat(
        self, client: PredibaseClient, prompt: str, adapter: str | None, tag: str
    ) -> dict[str, Any]:
        messages = [ChatMessage(role="user", content=prompt)]
        if self.system_prompt:
            messages.insert(0, ChatMessage(role="system", content=self.system_prompt))
        extra = {"stop": self.stop} if self.stop else {}
        request = ChatCompletionRequest(
            messages=messages,
            model=adapter or "",
            max_tokens=self.max_new_tokens,
            temperature=self.temperature,
            top_p=self.top_p,
            **extra,
        )
        if not self.stream:
            answer = client.chat_completion(self.deployment, request)
            choice = answer.choices[0] if answer.choices else None
            text = choice.message.content if choice else ""
            finish = choice.finish_reason if choice else None
            usage = answer.usage
        else:
            parts: list[str] = []
            finish, usage = None, None
            with _LineLog(self.log.info, tag) as lines:
                for chunk in client.chat_completion_stream(self.deployment, request):
                    for part in chunk.choices[:1]:
                        if part.delta.content:
                            parts.append(part.delta.content)
                            lines.add(part.delta.content)
                        finish = part.finish_reason or finish
                    usage = chunk.usage or usage
            text = "".join(parts)
        return {
            "text": text,
            "finish_reason": finish,
            "prompt_tokens": usage.prompt_tokens if usage else None,
            "generated_tokens": usage.completion_tokens if usage else None,
        }

    def _write(self, results: list[dict[str, Any]]) -> str:
        lines = "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in results)
        target = self.output_path
        if isinstance(target, str) and "://" not in target:
            local = Path(target)
            local.parent.mkdir(parents=True, exist_ok=True)
            local.write_text(lines, encoding="utf-8")
        else:
            from airflow.sdk import ObjectStoragePath

            path = target if isinstance(target, ObjectStoragePath) else ObjectStoragePath(target)
            with path.open("w") as handle:
                handle.write(lines)
        self.log.info("wrote %d result(s) to %s", len(results), target)
        return str(target)


class _LineLog:
    """Streamed tokens become log lines: at a newline, at `_LINE_CHARS`, or every
    `_FLUSH_SECONDS` while tokens arrive; the rest when the stream ends."""

    def __init__(
        self,
        emit: Callable[..., Any],
        tag: str,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._emit = emit
        self._tag = tag
        self._clock = clock
        self._buffer = ""
        self._since = clock()

    def __enter__(self) -> _LineLog:
        return self

    def __exit__(self, *exc: Any) -> None:
        self._flush()

    def add(self, text: str) -> None:
        self._buffer += text
        for line in self._complete_lines():
            self._emit("%s %s", self._tag, line)
            self._since = self._clock()
        if len(self._buffer) >= _LINE_CHARS or (
            self._buffer and self._clock() - self._since >= _FLUSH_SECONDS
        ):
            self._flush()

    def _complete_lines(self) -> Iterator[str]:
        while "\n" in self._buffer:
            line, self._buffer = self._buffer.split("\n", 1)
            yield line

    def _flush(self) -> None:
        if self._buffer:
            self._emit("%s %s", self._tag, self._buffer)
            self._buffer = ""
        self._since = self._clock()
