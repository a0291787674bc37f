"""Server-sent events: the line parser, then streams through the client."""

from __future__ import annotations

import httpx
import pytest
from predibase_fakes import Script, async_client, fail, outcome, reply, sync_client

from airflow_predibase.client import (
    APIConnectionError,
    AuthenticationError,
    ResponseValidationError,
    StreamError,
)
from airflow_predibase.client._sse import EventStream
from airflow_predibase.client.models import (
    ChatCompletionChunk,
    ChatCompletionRequest,
    ChatMessage,
    CompletionRequest,
    GenerateRequest,
    StreamEvent,
)

GEN = GenerateRequest(inputs="Say hi")
CHAT = ChatCompletionRequest(messages=[ChatMessage(role="user", content="hi")])


def feed(lines: list[str], model=StreamEvent) -> tuple[list, EventStream]:
    stream = EventStream(model, method="POST", path="/x")
    events = [event for line in lines for event in stream.feed(line)]
    return events + stream.end(), stream


@pytest.mark.parametrize("prefix", ["data:", "data: "], ids=["no-space", "space"])
def test_data_with_or_without_space(prefix: str) -> None:
    events, _ = feed([prefix + '{"token":{"id":1,"text":"a"}}', ""])
    assert events[0].token.text == "a"


def test_multi_line_data_is_joined() -> None:
    events, _ = feed(['data: {"token":', 'data: {"id": 1, "text": "a"}}', ""])
    assert events[0].token.id == 1


def test_comments_other_fields_and_crlf_are_ignored() -> None:
    events, _ = feed(
        [": keep-alive", "event: message", "id: 7", 'data: {"generated_text":"x"}\r', "\r"]
    )
    assert [e.generated_text for e in events] == ["x"]


def test_done_ends_the_stream() -> None:
    events, stream = feed(
        ['data: {"choices":[]}', "", "data: [DONE]", "", 'data: {"choices":[]}', ""],
        ChatCompletionChunk,
    )
    assert len(events) == 1
    assert stream.done


def test_last_event_without_blank_line_is_kept() -> None:
    events, _ = feed(['data: {"generated_text":"end"}'])
    assert events[0].generated_text == "end"


@pytest.mark.parametrize(
    ("data", "message", "error_type"),
    [
        (
            '{"error":"Request failed during generation","error_type":"generation"}',
            "Request failed during generation",
            "generation",
        ),
        ('{"error":{"message":"overloaded"}}', "overloaded", None),
    ],
)
def test_in_band_error_raises_stream_error(data: str, message: str, error_type: str | None) -> None:
    with pytest.raises(StreamError) as info:
        feed([f"data: {data}", ""])
    assert (info.value.message, info.value.error_type) == (message, error_type)


def test_an_event_that_is_not_json_is_a_typed_error() -> None:
    with pytest.raises(ResponseValidationError):
        feed(["data: {oops", ""])


# -- through the client --------------------------------------------------------------------

TOKENS = (
    b'data:{"token":{"id":1,"text":"Hel","logprob":-0.1,"special":false},"generated_text":null,"details":null}\n\n'
    b'data:{"token":{"id":2,"text":"lo","logprob":-0.2,"special":false},"generated_text":null,"details":null}\n\n'
    b'data:{"token":{"id":3,"text":"","logprob":0.0,"special":true},"generated_text":"Hello",'
    b'"details":{"finish_reason":"eos_token","prompt_tokens":3,"generated_tokens":3}}\n\n'
)


@pytest.mark.parametrize("make", [sync_client, async_client], ids=["sync", "async"])
def test_generate_stream_final_event_has_the_whole_text(make) -> None:
    script = Script(reply(200, content=TOKENS, headers={"content-type": "text/event-stream"}))
    status, events = outcome(lambda: make(script).generate_stream("dep", GEN))
    assert status == "ok"
    assert [e["token"]["text"] for e in events] == ["Hel", "lo", ""]
    assert events[-1]["generated_text"] == "Hello"
    assert events[-1]["details"]["finish_reason"] == "eos_token"
    assert script.requests[0].headers["accept"] == "text/event-stream"


@pytest.mark.parametrize("make", [sync_client, async_client], ids=["sync", "async"])
def test_chat_stream_sets_stream_and_stops_at_done(make) -> None:
    body = (
        b'data: {"id":"c1","choices":[{"index":0,"delta":{"role":"assistant","content":"Hi"}}]}\n\n'
        b'data: {"id":"c1","choices":[],'
        b'"usage":{"prompt_tokens":2,"completion_tokens":1,"total_tokens":3}}\n\n'
        b"data: [DONE]\n\n"
    )
    script = Script(reply(200, content=body))
    status, chunks = outcome(lambda: make(script).chat_completion_stream("dep", CHAT))
    assert status == "ok"
    assert chunks[-1]["usage"]["total_tokens"] == 3
    assert b'"stream":true' in script.requests[0].content


def test_completion_stream() -> None:
    body = (
        b'data: {"choices":[{"index":0,"text":"a"}]}\n\n'
        b'data: {"choices":[{"index":0,"text":"b"}]}\n\n'
        b"data: [DONE]\n\n"
    )
    chunks = list(
        sync_client(Script(reply(200, content=body))).completion_stream(
            "dep", CompletionRequest(prompt="x")
        )
    )
    assert "".join(c.choices[0].text for c in chunks) == "ab"


@pytest.mark.parametrize("make", [sync_client, async_client], ids=["sync", "async"])
def test_in_band_error_through_the_client(make) -> None:
    body = (
        b'data: {"token":{"id":1,"text":"a"}}\n\n'
        b'data: {"error":"adapter failed to load","error_type":"generation"}\n\n'
    )
    status, (name, message) = outcome(
        lambda: make(Script(reply(200, content=body))).generate_stream("dep", GEN)
    )
    assert (status, name) == ("error", "StreamError")
    assert "adapter failed to load" in message


def test_an_error_status_on_a_stream_is_raised_with_its_message() -> None:
    script = Script(reply(401, {"error": "invalid token"}))
    with pytest.raises(AuthenticationError, match="invalid token"):
        list(sync_client(script).generate_stream("dep", GEN))


def test_a_stream_is_retried_before_it_starts() -> None:
    script = Script(reply(503), fail(httpx.ConnectError), reply(200, content=TOKENS))
    events = list(sync_client(script).generate_stream("dep", GEN))
    assert events[-1].generated_text == "Hello"
    assert len(script.requests) == 3


def test_a_stream_cut_mid_way_is_a_connection_error() -> None:
    class Cut(httpx.SyncByteStream):
        def __iter__(self):
            yield b'data: {"token":{"id":1,"text":"a"}}\n\n'
            raise httpx.ReadError("connection reset")

    script = Script(lambda request: httpx.Response(200, stream=Cut()))
    stream = sync_client(script).generate_stream("dep", GEN)
    assert next(stream).token.text == "a"
    with pytest.raises(APIConnectionError, match="connection reset"):
        next(stream)
