"""Error mapping: every body shape, every status, request IDs; and the token never leaks."""

from __future__ import annotations

import logging
import traceback

import httpx
import pytest
from predibase_fakes import SETTINGS, TOKEN, Script, fail, reply, sync_client

from airflow_predibase.client import (
    APIConnectionError,
    APIStatusError,
    AuthenticationError,
    BadRequestError,
    ConflictError,
    NotFoundError,
    OutcomeUnknownError,
    PermissionDeniedError,
    PredibaseError,
    RateLimitError,
    ResponseValidationError,
    RetryPolicy,
    ServerError,
)
from airflow_predibase.client.models import GenerateRequest, RepoRequest


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (400, BadRequestError),
        (401, AuthenticationError),
        (403, PermissionDeniedError),
        (404, NotFoundError),
        (409, ConflictError),
        (422, BadRequestError),
        (424, APIStatusError),
        (429, RateLimitError),
        (500, ServerError),
        (503, ServerError),
    ],
)
def test_each_status_maps_to_its_class(status: int, error: type[APIStatusError]) -> None:
    script = Script(reply(status, {"error": "nope"}))
    with pytest.raises(error) as info:
        sync_client(script, retry=RetryPolicy(max_attempts=1)).get_repo("r")
    assert type(info.value) is error
    assert info.value.status_code == status
    assert info.value.message == "nope"


@pytest.mark.parametrize(
    ("body", "message", "error_type"),
    [
        ({"error": "dataset name taken"}, "dataset name taken", None),
        (
            {"error": {"message": "dataset name taken", "type": "conflict"}},
            "dataset name taken",
            "conflict",
        ),
        (
            {"error": "Input validation error", "error_type": "validation"},
            "Input validation error",
            "validation",
        ),
        (
            {"detail": [{"loc": ["body", "name"], "msg": "required"}]},
            '[{"loc": ["body", "name"], "msg": "required"}]',
            None,
        ),
        ({"message": "plain message"}, "plain message", None),
        (["odd", "body"], '["odd", "body"]', None),
    ],
    ids=["string", "nested", "serving", "detail", "message", "list"],
)
def test_message_from_every_json_shape(body, message: str, error_type: str | None) -> None:
    with pytest.raises(APIStatusError) as info:
        sync_client(Script(reply(409, body))).get_repo("r")
    assert info.value.message == message
    assert info.value.error_type == error_type


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"<html><body>502 Bad Gateway</body></html>", "<html><body>502 Bad Gateway</body></html>"),
        (b"upstream   connect error\n or disconnect", "upstream connect error or disconnect"),
        (b"", "Forbidden"),
    ],
    ids=["html", "text", "empty"],
)
def test_message_from_a_non_json_body(content: bytes, message: str) -> None:
    with pytest.raises(PermissionDeniedError) as info:
        sync_client(Script(reply(403, content=content))).get_repo("r")
    assert info.value.message == message


def test_a_huge_error_body_is_clipped() -> None:
    with pytest.raises(BadRequestError) as info:
        sync_client(Script(reply(400, content=b"x" * 10_000))).get_repo("r")
    assert len(info.value.message) <= 500


@pytest.mark.parametrize("header", ["x-request-id", "request-id"])
def test_request_id_is_captured(header: str) -> None:
    with pytest.raises(NotFoundError) as info:
        sync_client(Script(reply(404, {"error": "no"}, headers={header: "req-42"}))).get_repo("r")
    assert info.value.request_id == "req-42"
    assert "req-42" in str(info.value)
    assert (info.value.method, info.value.path) == ("GET", "/repos/r")


def test_rate_limit_carries_retry_after() -> None:
    script = Script(reply(429, content=b"Too Many Requests", headers={"Retry-After": "12"}))
    with pytest.raises(RateLimitError) as info:
        sync_client(script, retry=RetryPolicy(max_attempts=1)).list_models()
    assert info.value.retry_after == 12.0


@pytest.mark.parametrize(
    "body",
    [b"not json", b'{"data": {"name": 5}}', b'{"nothing": "useful"}'],
    ids=["not-json", "wrong-type", "missing-field"],
)
def test_a_success_body_that_does_not_parse_is_a_typed_error(body: bytes) -> None:
    with pytest.raises(ResponseValidationError) as info:
        sync_client(Script(reply(200, content=body))).get_repo("r")
    assert info.value.status_code == 200


def test_a_bad_result_line_raises_instead_of_being_dropped() -> None:
    lines = b'{"custom_id":"a","response":null,"error":null}\n\n{"custom_id": 1\n'
    script = Script(
        reply(200, {"url": "https://s3.example.com/out.jsonl"}), reply(200, content=lines)
    )
    with pytest.raises(ResponseValidationError, match="line 3"):
        sync_client(script).download_batch_results("b-1")


def test_unwrapping_keeps_a_model_that_has_a_data_field() -> None:
    # `data` is unwrapped only when the outer object lacks the model's required fields.
    body = {"name": "ds", "status": "connected", "data": {"name": "inner"}}
    dataset = sync_client(Script(reply(200, body))).get_dataset("ds")
    assert dataset.name == "ds"


@pytest.mark.parametrize(
    "body",
    [
        [{"name": "r"}],
        {"data": [{"name": "r"}]},
        {"data": {"repos": [{"name": "r"}]}},
        {"repos": [{"name": "r"}]},
    ],
    ids=["bare", "data", "data-repos", "repos"],
)
def test_list_wrappers(body) -> None:
    assert [r.name for r in sync_client(Script(reply(200, body))).list_repos()] == ["r"]


# -- the token never leaks -----------------------------------------------------------------


def _failing_calls():
    return [
        (lambda c: c.get_repo("r"), [reply(401, {"error": "bad token"})]),
        (lambda c: c.list_models(), [reply(503, content=b"down")] * 4),
        (lambda c: c.list_models(), [fail(httpx.ConnectError)] * 4),
        (lambda c: c.create_repo(RepoRequest(name="r")), [fail(httpx.ReadTimeout)]),
        (lambda c: c.create_repo(RepoRequest(name="r")), [reply(500, {"error": "x"})]),
        (
            lambda c: list(c.generate_stream("d", GenerateRequest(inputs="x"))),
            [reply(200, content=b'data: {"error":"boom"}\n\n')],
        ),
        (lambda c: c.get_repo("r"), [reply(200, content=b"garbage")]),
    ]


@pytest.mark.parametrize("index", range(len(_failing_calls())))
def test_token_never_in_logs_or_errors(index: int, caplog: pytest.LogCaptureFixture) -> None:
    call, steps = _failing_calls()[index]
    caplog.set_level(logging.DEBUG)
    client = sync_client(Script(*steps))
    with pytest.raises(PredibaseError) as info:
        call(client)
    error = info.value
    texts = [
        caplog.text,
        str(error),
        repr(error),
        repr(error.args),
        *map(str, vars(error).values()),
    ]
    texts += traceback.format_exception(error)  # includes every chained cause
    for text in texts:
        assert TOKEN not in text


def test_retries_are_logged_without_the_token(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    with pytest.raises(ServerError):
        sync_client(Script(*[reply(503)] * 4)).list_models()
    assert "retrying in" in caplog.text
    assert TOKEN not in caplog.text


def test_token_not_in_reprs() -> None:
    client = sync_client(Script())
    for text in (repr(client), repr(SETTINGS), str(SETTINGS), repr(client.retry_policy)):
        assert TOKEN not in text
    assert "tenant1" in repr(client)


def test_connection_error_is_not_outcome_unknown_for_get() -> None:
    with pytest.raises(APIConnectionError) as info:
        sync_client(Script(*[fail(httpx.ConnectError)] * 4)).get_repo("r")
    assert not isinstance(info.value, OutcomeUnknownError)
