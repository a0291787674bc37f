"""The sync and async clients share every line but the send: same script, same outcome."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
from predibase_fakes import FakeClock, Script, async_client, fail, outcome, reply, sync_client

from airflow_predibase.client.models import (
    ChatCompletionRequest,
    ChatMessage,
    GenerateRequest,
    RepoRequest,
)

JOB = {"id": "job-1", "status": "training", "repo": "r", "adapter_version": None}
SSE_TOKENS = (
    b'data:{"token":{"id":1,"text":"Hi","logprob":-0.1,"special":false},"generated_text":null}\n\n'
    b'data: {"token":{"id":2,"text":"!","logprob":-0.2,"special":false},"generated_text":"Hi!"}\n\n'
)
CHAT = ChatCompletionRequest(messages=[ChatMessage(role="user", content="hi")])

# (name, steps of the fake server, the call)
SCRIPTS: list[tuple[str, list[Any], Callable[[Any], Any]]] = [
    ("plain get", [reply(200, JOB)], lambda c: c.get_finetuning_job("job-1")),
    ("wrapped list", [reply(200, {"data": {"repos": [{"name": "r"}]}})], lambda c: c.list_repos()),
    (
        "retried then ok",
        [reply(503), fail(httpx.ReadTimeout), reply(200, JOB)],
        lambda c: c.get_finetuning_job("j"),
    ),
    ("retries exhausted", [reply(502)] * 4, lambda c: c.list_deployments()),
    (
        "fail fast",
        [reply(404, {"error": {"message": "no repo"}}, headers={"request-id": "q1"})],
        lambda c: c.get_repo("r"),
    ),
    ("ambiguous create", [fail(httpx.ReadTimeout)], lambda c: c.create_repo(RepoRequest(name="r"))),
    (
        "create 429 then ok",
        [reply(429, headers={"Retry-After": "2"}), reply(200, {"name": "r"})],
        lambda c: c.create_repo(RepoRequest(name="r")),
    ),
    (
        "non-json 503",
        [reply(503, content=b"<html>Service Unavailable</html>")] * 4,
        lambda c: c.list_models(),
    ),
    (
        "upload flow",
        [
            reply(200, {"presignedUrl": "https://s3.example.com/u?sig=1", "uploadToken": "t"}),
            reply(200),
            reply(200, {"data": {"name": "ds", "status": "connecting"}}),
        ],
        lambda c: c.upload_dataset("ds", b"prompt,completion\na,b\n", "train.csv"),
    ),
    (
        "batch results",
        [
            reply(200, {"url": "https://s3.example.com/out.jsonl"}),
            reply(200, content=b'{"custom_id":"a","response":null,"error":{"message":"x"}}\n'),
        ],
        lambda c: c.download_batch_results("b-1"),
    ),
    (
        "stream",
        [reply(200, content=SSE_TOKENS)],
        lambda c: c.generate_stream("dep", GenerateRequest(inputs="x")),
    ),
    (
        "stream in-band error",
        [reply(200, content=b'data: {"token":{"id":1}}\n\ndata: {"error":"boom"}\n\n')],
        lambda c: c.generate_stream("dep", GenerateRequest(inputs="x")),
    ),
    (
        "chat stream to DONE",
        [reply(200, content=b'data: {"choices":[{"delta":{"content":"a"}}]}\n\ndata: [DONE]\n\n')],
        lambda c: c.chat_completion_stream("dep", CHAT),
    ),
    ("health", [reply(200)], lambda c: c.health("dep")),
]


@pytest.mark.parametrize(("steps", "call"), [s[1:] for s in SCRIPTS], ids=[s[0] for s in SCRIPTS])
def test_same_requests_same_outcome(steps: list[Any], call: Callable[[Any], Any]) -> None:
    runs = []
    for make in (sync_client, async_client):
        script, clock = Script(*steps), FakeClock()
        client = make(script, clock=clock)
        result = outcome(lambda client=client: call(client))
        runs.append((script.sent, [dict(r.headers) for r in script.requests], clock.sleeps, result))
    assert runs[0] == runs[1]
    assert runs[0][3][0] in ("ok", "error")
