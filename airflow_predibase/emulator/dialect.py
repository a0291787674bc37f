"""Which wire a request speaks, and the 4xx for a request shaped for the other dialect.

The seed spec and production (as the official SDK speaks it) share many paths. Where a
body tells them apart, its shape decides: a fine-tuning POST with `params`, a deployment
POST or PUT with `config` are production's. A server
started with `--dialect spec` or `--dialect platform` answers the other one with a 4xx that
says which dialect it speaks; `--dialect default` serves both.

Three reads cannot be one object for both (a repos list whose `data` is a list or an
object, a deployment whose `accelerator` is a string or `{id}`, an adapter version whose
`finetuningJob` is an ID or an object). Under `default` they answer production's shape to
a client that names itself the official SDK (`User-Agent: predibase-sdk/...`), the seed's
otherwise. Every other shared read answers one object that satisfies both.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request

from airflow_predibase.emulator.errors import ApiError

SPEC = "spec"
PLATFORM = "platform"
DEFAULT = "default"

_WHAT = {
    SPEC: "the seed spec",
    PLATFORM: "production Predibase (the official SDK's wire format)",
}
_SDK_AGENT = "predibase-sdk/"

#: Keys that only production's body of each operation has.
_PLATFORM_KEYS: dict[str, tuple[str, ...]] = {
    "finetuning": ("params",),
    "deployment": ("config",),
}


def wrong_dialect(server: str, request: str) -> ApiError:
    """The 4xx for a request shaped for `request` on a server that speaks only `server`."""
    return ApiError(
        400,
        f"this emulator speaks the {server!r} dialect ({_WHAT[server]}); this request is "
        f"shaped for {_WHAT[request]}; start it with --dialect default or {request}",
    )


def body_dialect(operation: str, body: Any) -> str:
    """`platform` or `spec`: whose body of `operation` this is, by its keys."""
    keys = _PLATFORM_KEYS[operation]
    if isinstance(body, dict) and any(key in body for key in keys):
        return PLATFORM
    return SPEC


def admit(server: str, request: str) -> None:
    """Raise the wrong-dialect 4xx unless a `server` emulator serves `request`-shaped calls."""
    if server != DEFAULT and server != request:
        raise wrong_dialect(server, request)


def from_sdk(request: Request) -> bool:
    """True when the official SDK sent the request (it names itself in User-Agent)."""
    return request.headers.get("user-agent", "").startswith(_SDK_AGENT)


def read_dialect(server: str, request: Request) -> str:
    """Which shape a read that cannot be a union answers under `server`."""
    if server == DEFAULT:
        return PLATFORM if from_sdk(request) else SPEC
    return server
