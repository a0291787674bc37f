"""One error tree for everything the client raises.

    PredibaseError
    ├── APIConnectionError            the request never got an HTTP answer
    │   └── APITimeoutError           ... because a timeout expired
    ├── OutcomeUnknownError           a create POST may or may not have taken effect
    ├── StreamError                   an error event inside a 200 stream
    ├── ResponseValidationError       a success answer whose body is not what was expected
    └── APIStatusError                the server answered with an error status
        ├── BadRequestError           400 and 422 (validation)
        ├── AuthenticationError       401
        ├── PermissionDeniedError     403
        ├── NotFoundError             404
        ├── ConflictError             409
        ├── RateLimitError            429 (carries retry_after)
        └── ServerError               5xx

Every error carries the server's message and the request ID when one was sent. None ever
contains the API token: messages are built from the server's body and the URL path only.
"""

from __future__ import annotations


class PredibaseError(Exception):
    """Root of every error the Predibase client raises."""

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        request_id: str | None = None,
        method: str | None = None,
        path: str | None = None,
    ) -> None:
        self.message = message
        self.status_code = status_code
        self.request_id = request_id
        self.method = method
        self.path = path
        super().__init__(self._render())

    def _render(self) -> str:
        parts = []
        if self.method and self.path:
            parts.append(f"{self.method} {self.path}")
        if self.status_code is not None:
            parts.append(f"HTTP {self.status_code}")
        head = " -> ".join(parts)
        text = f"{head}: {self.message}" if head else self.message
        if self.request_id:
            text += f" (request id {self.request_id})"
        return text


class APIConnectionError(PredibaseError):
    """No HTTP answer: refused, reset, DNS, TLS. Safe to retry for idempotent requests."""


class APITimeoutError(APIConnectionError):
    """A connect, read, write or pool timeout expired."""


class OutcomeUnknownError(PredibaseError):
    """A create POST was sent but its outcome is unknown (timeout after sending, or 5xx).

    It is not retried blindly, because a retry could start a second GPU job. Look up what
    was created (the provider searches for its idempotency marker) before trying again.
    """


class StreamError(PredibaseError):
    """An in-band error event in a stream whose HTTP status was 200."""

    def __init__(self, message: str, *, error_type: str | None = None, **kwargs: object) -> None:
        self.error_type = error_type
        super().__init__(message, **kwargs)  # type: ignore[arg-type]


class ResponseValidationError(PredibaseError):
    """A 2xx answer whose body does not parse into the expected model (or a bad result line)."""


class APIStatusError(PredibaseError):
    """The server answered with an error status."""

    def __init__(
        self,
        message: str,
        *,
        status_code: int,
        error_type: str | None = None,
        **kwargs: object,
    ) -> None:
        self.error_type = error_type
        super().__init__(message, status_code=status_code, **kwargs)  # type: ignore[arg-type]


class BadRequestError(APIStatusError):
    """400 or 422: the request was invalid; the message says why."""


class AuthenticationError(APIStatusError):
    """401: the token is missing, wrong or expired."""


class PermissionDeniedError(APIStatusError):
    """403: the token may not do this."""


class NotFoundError(APIStatusError):
    """404: no such resource."""


class ConflictError(APIStatusError):
    """409: the resource already exists or is in a conflicting state."""


class RateLimitError(APIStatusError):
    """429: too many requests. `retry_after` is the server's hint in seconds, if any."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: object) -> None:
        self.retry_after = retry_after
        super().__init__(message, **kwargs)  # type: ignore[arg-type]


class ServerError(APIStatusError):
    """5xx: the server failed."""


_BY_STATUS: dict[int, type[APIStatusError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    422: BadRequestError,
    429: RateLimitError,
}


def error_class_for(status_code: int) -> type[APIStatusError]:
    """The error class for an HTTP error status."""
    if status_code >= 500:
        return ServerError
    return _BY_STATUS.get(status_code, APIStatusError)
