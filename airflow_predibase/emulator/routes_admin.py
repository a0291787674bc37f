"""The emulator's own control API under `/__emulator__`, for tests and demos.

It takes the same bearer token as the platform routes (only `/health` is open), so a
test that can create jobs can also script faults, and nothing else on the machine can.
Faults never apply to these routes.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from airflow_predibase.emulator.backend import Backend
from airflow_predibase.emulator.config import resolve_profile
from airflow_predibase.emulator.errors import ApiError
from airflow_predibase.emulator.faults import ADMIN_PREFIX, ChaosConfig, FaultRule
from airflow_predibase.emulator.resources._base import LifecycleResource
from airflow_predibase.emulator.wire import json_response, read_json, validate


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ProfileChange(_Strict):
    profile: str | dict[str, Any] = Field(description="A profile name or a full set of durations.")


class ForceState(_Strict):
    status: str = Field(description="Target status; the lifecycle continues from there.")
    error: str | None = Field(default=None, description="Failure reason for a failed status.")


class FailNext(_Strict):
    kind: str = Field(description="Which resources to fail: a kind's name or an alias.")
    count: int = Field(default=1, ge=1, description="How many of the next ones created.")
    error: str = Field(default="emulated failure", description="The failure reason they show.")


#: The latest moment the clock may reach: 2999-12-31, far from datetime's year 9999 limit.
LATEST = 32_503_593_600.0


class ClockSkip(_Strict):
    seconds: float = Field(
        gt=0, le=LATEST, description="How far to move the emulator's clock (at most to 2999)."
    )


class Pagination(_Strict):
    page_size: int | None = Field(
        default=None,
        ge=1,
        le=1_000_000,
        description="Serve every list in pages of at most this many items; null: no cap.",
    )


class RateLimitChange(_Strict):
    requests_per_second: float | None = Field(
        gt=0, description="Requests per second per tenant (token); null: no limit."
    )


class AdminRoutes:
    def __init__(self, backend: Backend) -> None:
        self.backend = backend

    def routes(self) -> list[BaseRoute]:
        p = ADMIN_PREFIX
        return [
            Route(p + "/health", self.health, methods=["GET"]),
            Route(p + "/state", self.state, methods=["GET"]),
            Route(p + "/reset", self.reset, methods=["POST"]),
            Route(p + "/profile", self.get_profile, methods=["GET"]),
            Route(p + "/profile", self.set_profile, methods=["PUT"]),
            Route(p + "/faults", self.list_faults, methods=["GET"]),
            Route(p + "/faults", self.add_fault, methods=["POST"]),
            Route(p + "/faults", self.clear_faults, methods=["DELETE"]),
            Route(p + "/chaos", self.set_chaos, methods=["PUT"]),
            Route(p + "/chaos", self.stop_chaos, methods=["DELETE"]),
            Route(p + "/clock/advance", self.advance_clock, methods=["POST"]),
            Route(p + "/pagination", self.get_pagination, methods=["GET"]),
            Route(p + "/pagination", self.set_pagination, methods=["PUT"]),
            Route(p + "/fail-next", self.fail_next, methods=["POST"]),
            Route(p + "/rate-limit", self.get_rate_limit, methods=["GET"]),
            Route(p + "/rate-limit", self.set_rate_limit, methods=["PUT"]),
            Route(p + "/resources/{kind}/{key}/advance", self.advance, methods=["POST"]),
            Route(p + "/resources/{kind}/{key}/force", self.force, methods=["POST"]),
        ]

    async def health(self, request: Request) -> Response:
        return json_response({"status": "ok"})

    async def state(self, request: Request) -> Response:
        return json_response(self.backend.snapshot())

    async def reset(self, request: Request) -> Response:
        self.backend.reset()
        return json_response({"status": "reset"})

    async def get_profile(self, request: Request) -> Response:
        return json_response(self.backend.profile.model_dump())

    async def set_profile(self, request: Request) -> Response:
        change = validate(ProfileChange, await read_json(request))
        try:
            self.backend.profile = resolve_profile(change.profile)
        except ValueError as exc:  # pydantic's ValidationError is a ValueError too
            raise ApiError(422, str(exc)) from None
        return json_response(self.backend.profile.model_dump())

    async def list_faults(self, request: Request) -> Response:
        return json_response(self.backend.faults.describe())

    async def add_fault(self, request: Request) -> Response:
        rule = validate(FaultRule, await read_json(request))
        self.backend.faults.add(rule)
        return json_response(self.backend.faults.describe())

    async def clear_faults(self, request: Request) -> Response:
        self.backend.faults.clear()
        return json_response(self.backend.faults.describe())

    async def set_chaos(self, request: Request) -> Response:
        self.backend.faults.set_chaos(validate(ChaosConfig, await read_json(request)))
        return json_response(self.backend.faults.describe())

    async def stop_chaos(self, request: Request) -> Response:
        self.backend.faults.set_chaos(None)
        return json_response(self.backend.faults.describe())

    async def advance_clock(self, request: Request) -> Response:
        skip = validate(ClockSkip, await read_json(request))
        if self.backend.now() + skip.seconds > LATEST:
            raise ApiError(422, "field 'seconds': would move the clock past the year 2999")
        self.backend.clock.advance(skip.seconds)
        return json_response({"clock": self.backend.now()})

    async def get_pagination(self, request: Request) -> Response:
        return json_response(Pagination(page_size=self.backend.page_size).model_dump())

    async def set_pagination(self, request: Request) -> Response:
        change = validate(Pagination, await read_json(request))
        self.backend.page_size = change.page_size
        return json_response(change.model_dump())

    async def get_rate_limit(self, request: Request) -> Response:
        return json_response(self.backend.rate_limit.describe())

    async def set_rate_limit(self, request: Request) -> Response:
        change = validate(RateLimitChange, await read_json(request))
        self.backend.rate_limit.configure(change.requests_per_second)
        return json_response(self.backend.rate_limit.describe())

    async def fail_next(self, request: Request) -> Response:
        order = validate(FailNext, await read_json(request))
        kinds = self.backend.kinds
        resource = kinds.get(order.kind)
        if resource is None:
            raise ApiError(422, f"field 'kind': {order.kind!r} is not one of {kinds.describe()}")
        resource.schedule_failures(order.count, order.error)
        return json_response({"scheduled": order.model_dump()})

    def _target(self, request: Request) -> tuple[LifecycleResource, str]:
        """The resource kind the path names (404 if none), and the resource's key."""
        resources = self.backend.kinds.resolve(request.path_params["kind"])
        return resources, request.path_params["key"]

    async def advance(self, request: Request) -> Response:
        resources, key = self._target(request)
        return json_response(resources.advance(key))

    async def force(self, request: Request) -> Response:
        order = validate(ForceState, await read_json(request))
        resources, key = self._target(request)
        return json_response(resources.force(key, order.status, order.error))
