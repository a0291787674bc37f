"""Request building, response parsing and error mapping. No I/O happens here.

An operation describes each HTTP exchange as an `ApiRequest`. `build_request` turns that
into an `httpx.Request` for the given settings; the sync and async clients send it and hand
the `httpx.Response` to `check_response`, which returns it on success or raises the mapped
error. Response bodies are read through `decode` / `parse_model` / `parse_list`, which know
the platform's `{"data": ...}` wrappers.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar
from urllib.parse import quote, urlsplit

import httpx
from pydantic import BaseModel, ValidationError

from airflow_predibase import __version__
from airflow_predibase.client._retry import (
    RetryPolicy,
    nothing_sent,
    parse_retry_after,
    tenacity_kwargs,
)
from airflow_predibase.client.errors import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    OutcomeUnknownError,
    PredibaseError,
    RateLimitError,
    ResponseValidationError,
    error_class_for,
)
from airflow_predibase.client.settings import ClientSettings
from airflow_predibase.dataset_files import DatasetFileError, json_lines

M = TypeVar("M", bound=BaseModel)

USER_AGENT = f"airflow-provider-predibase/{__version__}"
Plane = Literal["control", "gateway", "serving", "external"]
_IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "PUT", "DELETE"})
# Error bodies can be whole HTML pages from a gateway; keep messages readable.
_MAX_MESSAGE = 500


def seg(value: str | int) -> str:
    """One URL path segment: names may hold characters that would change the path."""
    return quote(str(value), safe="")


@dataclass(frozen=True)
class ApiRequest:
    """One HTTP exchange, independent of settings and of sync/async.

    `path` is below the control base (`plane="control"`), below the gateway root, the
    control base without `/v2` (`"gateway"`: production's `/v1` routes), below the
    deployment's serving base (`"serving"`, which needs `deployment`), or a full URL sent
    without the token (`"external"`: presigned upload and result URLs).
    """

    method: str
    path: str
    plane: Plane = "control"
    deployment: str | None = None
    json: Any = None
    content: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    idempotent: bool | None = None
    """None: decided by the method. True for POSTs that create nothing (e.g. cancel)."""
    ok_statuses: frozenset[int] = frozenset()
    """Error statuses handed to the operation as answers instead of raised (and not retried)."""
    stream: bool = False

    @property
    def retry_safe(self) -> bool:
        if self.idempotent is not None:
            return self.idempotent
        return self.method in _IDEMPOTENT_METHODS

    @property
    def shown_path(self) -> str:
        """The path for messages and logs: never a query string (presigned signatures)."""
        if self.plane == "serving":
            return f"/deployments/{self.deployment}{self.path}"
        return urlsplit(self.path).path if self.plane == "external" else self.path

    @property
    def what(self) -> str:
        return f"{self.method} {self.shown_path}"


def default_timeout(settings: ClientSettings) -> httpx.Timeout:
    """Finite timeouts for every phase; connecting should never take the whole budget."""
    return httpx.Timeout(settings.timeout, connect=min(settings.timeout, 10.0))


def default_policy(settings: ClientSettings) -> RetryPolicy:
    return RetryPolicy(max_attempts=settings.max_retries + 1)


def url_for(settings: ClientSettings, call: ApiRequest) -> str:
    if call.plane == "external":
        if "://" in call.path:  # as given: presigned signatures are sensitive to re-encoding
            return call.path
        # Result URLs are absolute on the platform; a relative one is on the control host.
        return str(httpx.URL(settings.base_url + "/").join(call.path))
    if call.plane == "serving":
        if call.deployment is None:
            raise ValueError("a serving request needs a deployment name")
        # The `/` route is the base itself, with no trailing slash, as lorax-client sends it.
        return settings.deployment_url(seg(call.deployment)) + call.path.rstrip("/")
    if call.plane == "gateway":
        return settings.gateway_url + call.path
    return settings.base_url + call.path


def build_request(settings: ClientSettings, call: ApiRequest) -> httpx.Request:
    """The httpx request, with auth and a finite timeout attached per request.

    Nothing is taken from the httpx client, so one shared client can serve connections with
    different settings (the triggerer's pool).
    """
    headers = {"User-Agent": USER_AGENT, "Accept": "application/json", **call.headers}
    if call.plane != "external":
        headers["Authorization"] = f"Bearer {settings.token}"
    if call.stream:
        headers["Accept"] = "text/event-stream"
    return httpx.Request(
        call.method,
        url_for(settings, call),
        json=call.json,
        content=call.content,
        headers=headers,
        extensions={"timeout": default_timeout(settings).as_dict()},
    )


def request_id(response: httpx.Response) -> str | None:
    found: str | None = response.headers.get("x-request-id") or response.headers.get("request-id")
    return found


def _clip(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _MAX_MESSAGE else text[: _MAX_MESSAGE - 3] + "..."


def error_message(response: httpx.Response) -> tuple[str, str | None]:
    """(message, error_type) from any error body: JSON in its known shapes, or raw text."""
    try:
        body = response.json()
    except ValueError:
        text = response.text.strip()
        return (_clip(text) if text else response.reason_phrase or "no error message"), None
    if isinstance(body, dict):
        error = body.get("error")
        error_type = body.get("error_type")
        if isinstance(error, dict):
            error_type = error_type or error.get("type") or error.get("code")
            error = error.get("message")
        message = error or body.get("message") or body.get("detail")
        if message:
            text = message if isinstance(message, str) else json.dumps(message)
            return _clip(text), str(error_type) if error_type else None
    return _clip(json.dumps(body)), None


def status_error(call: ApiRequest, response: httpx.Response) -> APIStatusError:
    message, error_type = error_message(response)
    cls = error_class_for(response.status_code)
    kwargs: dict[str, Any] = {
        "status_code": response.status_code,
        "error_type": error_type,
        "request_id": request_id(response),
        "method": call.method,
        "path": call.shown_path,
    }
    if cls is RateLimitError:
        kwargs["retry_after"] = parse_retry_after(
            response.headers.get("retry-after"), now=time.time()
        )
    return cls(message, **kwargs)


def check_response(call: ApiRequest, response: httpx.Response) -> httpx.Response:
    """`response` if it is an answer the operation takes; else the mapped error is raised.

    A create POST that got a 5xx may still have created something, so the caller gets
    OutcomeUnknownError (chained to the ServerError) instead of a plain failure.
    """
    if response.status_code < 400 or response.status_code in call.ok_statuses:
        return response
    error = status_error(call, response)
    if response.status_code >= 500 and not call.retry_safe:
        reason = f"HTTP {response.status_code}: {error.message}"
        raise _outcome_unknown(call, reason, error.status_code, error.request_id) from error
    raise error


def transport_error(call: ApiRequest, error: httpx.HTTPError) -> PredibaseError:
    """The PredibaseError for an httpx exception (the caller chains it: `raise ... from`)."""
    reason = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
    if not call.retry_safe and not nothing_sent(error):
        return _outcome_unknown(call, reason)
    cls = APITimeoutError if isinstance(error, httpx.TimeoutException) else APIConnectionError
    return cls(reason, method=call.method, path=call.shown_path)


def _outcome_unknown(
    call: ApiRequest, reason: str, status: int | None = None, req_id: str | None = None
) -> OutcomeUnknownError:
    return OutcomeUnknownError(
        f"the request was sent but its outcome is unknown ({reason}); it was not retried "
        "because a retry could create a duplicate. Look up what was created before retrying.",
        status_code=status,
        request_id=req_id,
        method=call.method,
        path=call.shown_path,
    )


def invalid_response(
    call: ApiRequest, response: httpx.Response, why: str
) -> ResponseValidationError:
    return ResponseValidationError(
        f"unexpected response body: {why}",
        status_code=response.status_code,
        request_id=request_id(response),
        method=call.method,
        path=call.shown_path,
    )


def decode(call: ApiRequest, response: httpx.Response) -> Any:
    """The JSON body (None when empty)."""
    if not response.content:
        return None
    try:
        return response.json()
    except ValueError as exc:
        raise invalid_response(call, response, f"not JSON ({exc})") from None


def _required_keys(model: type[BaseModel]) -> set[str]:
    return {f.alias or name for name, f in model.model_fields.items() if f.is_required()}


def _validate(
    call: ApiRequest, response: httpx.Response, model: type[M], data: Any, where: str = ""
) -> M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        # Without the input values: an error message is no place for response contents.
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or '<root>'}: {e['msg']}"
            for e in exc.errors(include_input=False, include_url=False)
        )
        why = f"{where}not a {model.__name__}: {_clip(problems)}"
        raise invalid_response(call, response, why) from None


def parse_model(call: ApiRequest, response: httpx.Response, model: type[M]) -> M:
    """One object, unwrapped from `{"data": {...}}` when the platform wrapped it.

    Unwrapped only when the outer object lacks the model's required fields, so a model that
    happens to have a `data` field is left alone.
    """
    body = decode(call, response)
    if isinstance(body, dict) and isinstance(body.get("data"), dict):
        required = _required_keys(model)
        if body.keys() == {"data"} or (required and not required & body.keys()):
            body = body["data"]
    return _validate(call, response, model, body)


def parse_list(call: ApiRequest, response: httpx.Response, model: type[M], key: str) -> list[M]:
    """A list from `[...]`, `{"data": [...]}`, `{"data": {key: [...]}}` or `{key: [...]}`."""
    body = decode(call, response)
    if isinstance(body, dict) and "data" in body:
        body = body["data"]
    if isinstance(body, dict) and isinstance(body.get(key), list):
        body = body[key]
    if not isinstance(body, list):
        raise invalid_response(call, response, f"expected a list of {model.__name__}")
    return [_validate(call, response, model, item) for item in body]


def parse_jsonl(call: ApiRequest, response: httpx.Response, model: type[M]) -> list[M]:
    """One model per non-blank line. A bad line raises: a dropped row would go unnoticed."""
    try:
        lines = list(json_lines(response.text, "JSONL"))
    except DatasetFileError as error:
        raise invalid_response(call, response, str(error)) from None
    return [_validate(call, response, model, data, f"line {number} is ") for number, data in lines]


class ClientCore:
    """What the sync and async clients share besides sending: settings, policy, repr."""

    #: Small pool: a worker makes a handful of calls; the triggerer shares one client.
    POOL_LIMITS = httpx.Limits(max_connections=10, max_keepalive_connections=10)

    def __init__(
        self,
        settings: ClientSettings,
        retry: RetryPolicy | None,
        clock: Callable[[], float] | None,
    ) -> None:
        self.settings = settings
        self.retry_policy = retry or default_policy(settings)
        self._clock = clock or time.monotonic

    def deployment_url(self, name: str) -> str:
        """Serving base URL of one deployment."""
        return self.settings.deployment_url(seg(name))

    def _retry_kwargs(self, call: ApiRequest) -> dict[str, Any]:
        return tenacity_kwargs(
            self.retry_policy,
            idempotent=call.retry_safe,
            what=call.what,
            clock=self._clock,
            final=call.ok_statuses,
        )

    def __repr__(self) -> str:
        s = self.settings
        return (
            f"{type(self).__name__}(base_url={s.base_url!r}, serving_url={s.serving_url!r}, "
            f"tenant_id={s.tenant_id!r})"
        )
