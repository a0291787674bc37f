"""What Airflow sees when a Predibase wait ends badly. They wrap the client's errors.

* `PredibaseJobFailed` (retryable): the remote job errored; a retry starts a new one.
* `PredibaseJobCancelled` (not retried): someone cancelled the job on purpose.
* `PredibaseWatchedJobFailed` (not retried): a job the sensor watches (started elsewhere)
  failed.
* `PredibaseJobTimeout` (not retried): the operator's `timeout` passed; the job was cancelled.
* `PredibaseInvalidParameter` (not retried): a parameter is wrong; retrying cannot help.
* `PredibaseRequestRejected` (not retried): Predibase refused the request (400/422 with its
  reason, or 401/403: the token); sending it again cannot help.
"""

from __future__ import annotations

from airflow.providers.common.compat.sdk import AirflowException, AirflowFailException


class PredibaseJobFailed(AirflowException):
    """The remote job ended in a failure state. Carries the job ID and the server's reason."""

    def __init__(self, message: str, *, resource_id: str, remote_status: str | None) -> None:
        super().__init__(message)
        self.resource_id = resource_id
        self.remote_status = remote_status


class PredibaseWatchedJobFailed(AirflowFailException):
    """A job `WaitForJobSensor` watched (started elsewhere) failed; retrying cannot help."""

    def __init__(self, message: str, *, resource_id: str, remote_status: str | None) -> None:
        super().__init__(message)
        self.resource_id = resource_id
        self.remote_status = remote_status


class PredibaseJobCancelled(AirflowFailException):
    """The remote job was cancelled or stopped outside this task."""

    def __init__(self, message: str, *, resource_id: str, remote_status: str | None) -> None:
        super().__init__(message)
        self.resource_id = resource_id
        self.remote_status = remote_status


class PredibaseJobTimeout(AirflowFailException):
    """The operator's `timeout` passed before the job finished."""

    def __init__(self, message: str, *, resource_id: str, remote_status: str | None) -> None:
        super().__init__(message)
        self.resource_id = resource_id
        self.remote_status = remote_status


class PredibaseInvalidParameter(AirflowFailException):
    """A parameter is invalid; the message names it and the valid choices."""


class PredibaseRequestRejected(AirflowFailException):
    """Predibase rejected a request for a reason a retry cannot fix; carries its message."""
