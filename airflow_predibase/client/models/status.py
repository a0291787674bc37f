"""Resource statuses, defined once and shared by the client, operators, triggers and emulator.

Every status enum knows which of its states are terminal and which of those are success.
A value the server sends that we do not know yet does not crash parsing: it becomes a
pseudo-member that keeps the raw value and counts as not terminal, so waiting code keeps
waiting instead of failing on a platform upgrade.
"""

from __future__ import annotations

from enum import Enum
from typing import Any

#: {status enum: (terminal values, success values)}, filled in below each enum.
_SEMANTICS: dict[type, tuple[frozenset[str], frozenset[str]]] = {}


#: Non-terminal values on their way to a failure state, whatever the resource.
_WINDING_DOWN = frozenset({"stopping"})
#: Terminal values that mean "stopped on purpose" (DeploymentStatus overrides: there,
#: `stopped` is a failure state, API_NOTES).
_CANCELLED = frozenset({"canceled", "stopped"})


class _Status(str, Enum):
    """A string status with terminal/success semantics."""

    @classmethod
    def _missing_(cls, value: object) -> Any:
        if not isinstance(value, str):
            return None
        lowered = value.strip().lower()
        for member in cls:
            if member.value == lowered:
                return member
        pseudo = str.__new__(cls, value)
        pseudo._name_ = f"UNKNOWN_{value.upper()}"
        pseudo._value_ = value
        return pseudo

    def __str__(self) -> str:
        return str(self._value_)

    @property
    def is_known(self) -> bool:
        """False for a value the server sent that this version does not know."""
        return any(str(self._value_) == m._value_ for m in type(self))

    @property
    def is_terminal(self) -> bool:
        """True once the resource will not change state on its own any more."""
        return str(self._value_) in _SEMANTICS[type(self)][0]

    @property
    def is_success(self) -> bool:
        """True for the terminal states that mean the work succeeded."""
        return str(self._value_) in _SEMANTICS[type(self)][1]

    @property
    def is_cancelled(self) -> bool:
        """Terminal because someone stopped the work on purpose (not because it failed)."""
        return str(self._value_) in _CANCELLED

    @property
    def is_winding_down(self) -> bool:
        """Not terminal yet, but certain to end in failure (a cancel in progress)."""
        return str(self._value_) in _WINDING_DOWN

    @property
    def is_failure(self) -> bool:
        """True for the terminal states that are not success."""
        return self.is_terminal and not self.is_success


class FinetuningJobStatus(_Status):
    """`queued` -> `training` -> `completed` | `errored`; cancel: `stopping` -> `canceled`."""

    QUEUED = "queued"
    TRAINING = "training"
    STOPPING = "stopping"
    COMPLETED = "completed"
    ERRORED = "errored"
    CANCELED = "canceled"
    STOPPED = "stopped"


_SEMANTICS[FinetuningJobStatus] = (
    frozenset({"completed", "errored", "canceled", "stopped"}),
    frozenset({"completed"}),
)


class BatchInferenceJobStatus(_Status):
    """`queued` -> `running` -> `completed` | `errored` | `canceled`."""

    QUEUED = "queued"
    RUNNING = "running"
    COMPLETED = "completed"
    ERRORED = "errored"
    CANCELED = "canceled"


_SEMANTICS[BatchInferenceJobStatus] = (
    frozenset({"completed", "errored", "canceled"}),
    frozenset({"completed"}),
)


class DeploymentStatus(_Status):
    """`pending` -> `initializing` -> `ready`; `updating` and `standby` still serve.

    For waiting, a deployment is "settled" when it serves (`ready`, or `standby`: scaled to
    zero, cold-starts on the next request) or has failed (`failed`, `stopped`).
    """

    PENDING = "pending"
    INITIALIZING = "initializing"
    READY = "ready"
    UPDATING = "updating"
    STANDBY = "standby"
    FAILED = "failed"
    STOPPED = "stopped"
    DELETING = "deleting"

    @property
    def is_cancelled(self) -> bool:
        """Deployments are never cancelled: `failed` and `stopped` are both failures."""
        return False

    @property
    def is_serving(self) -> bool:
        """True while requests are answered (possibly after a cold start)."""
        return str(self._value_) in {"ready", "updating", "standby"}


_SEMANTICS[DeploymentStatus] = (
    frozenset({"ready", "standby", "failed", "stopped"}),
    frozenset({"ready", "standby"}),
)


class DatasetStatus(_Status):
    """`connecting` -> `connected` | `errored` (with `lastError`)."""

    CONNECTING = "connecting"
    CONNECTED = "connected"
    ERRORED = "errored"


_SEMANTICS[DatasetStatus] = (frozenset({"connected", "errored"}), frozenset({"connected"}))


class AdapterVersionStatus(_Status):
    """An adapter version exists from job creation; it is usable once `ready`."""

    PENDING = "pending"
    READY = "ready"
    ERRORED = "errored"
    CANCELED = "canceled"


_SEMANTICS[AdapterVersionStatus] = (
    frozenset({"ready", "errored", "canceled"}),
    frozenset({"ready"}),
)
