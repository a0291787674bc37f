"""Production's control plane as the official SDK speaks it, for `platform` and `default`.

Shared paths dispatch on the body's shape (`dialect.body_dialect`): a seed-shaped body
goes to `ControlRoutes` (under `default`) or gets the wrong-dialect 4xx (under `platform`).
Reads answer production's shape, or (under `default`) one object that is both. The
handlers: fine-tuning and adapters in `routes_platform_training`, the rest here.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route, WebSocketRoute

from airflow_predibase.emulator import dialect as d
from airflow_predibase.emulator import platform_requests as requests
from airflow_predibase.emulator import platform_wire as shape
from airflow_predibase.emulator.errors import ApiError
from airflow_predibase.emulator.lifecycle import reached
from airflow_predibase.emulator.routes_control import origin
from airflow_predibase.emulator.routes_platform_training import TrainingHandlers
from airflow_predibase.emulator.wire import iso, json_response, read_json


class PlatformRoutes(TrainingHandlers):
    """Every platform handler, and the route lists `app.create_app` mounts per dialect."""

    def root_routes(self) -> list[BaseRoute]:
        """Outside `/v2`: the SDK's legacy session (with and without `/v1`)."""
        routes: list[BaseRoute] = []
        for prefix in ("", "/v1"):
            routes += [
                Route(f"{prefix}/users/current", self.current_user, methods=["GET"]),
                Route(f"{prefix}/llms/{{name}}/events", self.deployment_events, methods=["GET"]),
            ]
        routes.append(Route("/v1/datasets/name/{name}", self.dataset_by_name, methods=["GET"]))
        return routes

    def body_routes(self) -> list[BaseRoute]:
        """Shared paths whose body says which dialect it is (every dialect mounts them)."""
        c = self.control
        return [
            Route(
                "/finetuning/jobs",
                self._by_body("finetuning", c.create_job, self.create_job),
                methods=["POST"],
            ),
            Route(
                "/deployments",
                self._by_body("deployment", c.create_deployment, self.create_deployment),
                methods=["POST"],
            ),
            Route(
                "/deployments/{name}",
                self._by_body("deployment", c.update_deployment, self.update_deployment),
                methods=["PUT"],
            ),
        ]

    def read_routes(self) -> list[BaseRoute]:
        """Shared reads in production's (or the union) shape: `platform` and `default` only."""
        return [
            Route("/finetuning/jobs", self.list_jobs, methods=["GET"]),
            Route("/finetuning/jobs/{job_id}", self.get_job, methods=["GET"]),
            Route("/finetuning/jobs/{job_id}/cancel", self.cancel_job, methods=["POST"]),
            Route("/repos", self.create_repo, methods=["POST"]),
            Route("/repos", self.list_repos, methods=["GET"]),
            Route("/repos/{repo}", self.get_repo, methods=["GET"]),
            Route("/repos/{repo}/version/{version}", self.get_version, methods=["GET"]),
            Route("/deployments", self.list_deployments, methods=["GET"]),
            Route("/deployments/{name}", self.get_deployment, methods=["GET"]),
            Route("/datasets/{name}", self.get_dataset, methods=["GET"]),
        ]

    def seed_path_routes(self) -> list[BaseRoute]:
        """Seed paths the SDK never calls: production's objects under `platform`, the seed's
        under `default` (docs/platform.md: "seed path, platform shape")."""
        c = self.control
        dataset = self._reshaped(c.list_datasets, lambda seed, _: shape.dataset(seed))
        connect = self._reshaped(c.connect_dataset, lambda seed, _: shape.dataset(seed))
        return [
            Route("/datasets", dataset, methods=["GET"]),
            Route("/datasets", connect, methods=["POST"]),
            Route(
                "/batch-inference/jobs",
                self._reshaped(c.list_batches, self._batch),
                methods=["GET"],
            ),
            Route(
                "/batch-inference/jobs",
                self._reshaped(c.create_batch, self._batch),
                methods=["POST"],
            ),
            Route(
                "/batch-inference/jobs/{job_id}",
                self._reshaped(c.get_batch, self._batch),
                methods=["GET"],
            ),
            Route(
                "/batch-inference/jobs/{job_id}/cancel",
                self._reshaped(c.cancel_batch, self._batch),
                methods=["POST"],
            ),
        ]

    def platform_routes(self) -> list[BaseRoute]:
        """Paths only production has; under `spec` they answer the wrong-dialect 4xx."""
        return [
            Route("/finetuning/jobs/cost-estimate", self.cost_estimate, methods=["GET", "POST"]),
            # `adapters.estimate_finetuning_cost` posts the same body here.
            Route("/finetuning/jobs/estimate_cost", self.cost_estimate, methods=["POST"]),
            Route("/finetuning/jobs/{job_id}/timeline", self.timeline, methods=["GET"]),
            Route("/finetuning/jobs/{job_id}/config", self.update_job, methods=["PUT"]),
            WebSocketRoute("/finetuning/jobs/{job_id}/metrics/stream", self.metrics),
            Route("/repos/{repo}/version/{version}", self.update_version, methods=["PUT"]),
            Route("/repos/{repo}/version/{version}", self.delete_version, methods=["DELETE"]),
        ]

    def batch_routes(self) -> list[BaseRoute]:
        """Production's batch paths: after the seed's, so `/batch-inference/jobs` stays theirs."""
        return [
            Route("/batch-inference", self.create_batch, methods=["POST"]),
            Route("/batch-inference", self.list_batches, methods=["GET"]),
            Route("/batch-inference/{job_id}", self.get_batch, methods=["GET"]),
            Route("/batch-inference/{job_id}/cancel", self.cancel_batch, methods=["POST"]),
            Route("/batch-inference/{job_id}/results", self.batch_results, methods=["GET"]),
        ]

    # -- the user --------------------------------------------------------------------------

    async def current_user(self, request: Request) -> Response:
        d.admit(self.dialect, d.PLATFORM)
        return json_response(shape.user(self.backend.config.tenant))

    # -- deployments ----------------------------------------------------------------------

    def _deployment(self, seed: dict[str, Any]) -> dict[str, Any]:
        deployments = self.backend.deployments
        doc = deployments.find(seed["name"]) or {"_shared": True}
        model = self.backend.config.base_model(str(seed.get("base_model")))
        window = None if model is None else model.context_window
        return shape.deployment(seed, doc, window, seed.get("description"))

    def _deployment_answer(self, seed: dict[str, Any]) -> Response:
        platform = {"data": self._deployment(seed)}
        return json_response({**seed, **platform} if self.union else platform)

    async def create_deployment(self, request: Request) -> Response:
        seed_request, extras = requests.deployment(
            await read_json(request), self.backend.config.accelerators
        )
        return self._deployment_answer(self.backend.deployments.create(seed_request, extras=extras))

    async def update_deployment(self, request: Request) -> Response:
        seed_request, extras = requests.deployment_update(
            await read_json(request), self.backend.config.accelerators
        )
        name = request.path_params["name"]
        return self._deployment_answer(
            self.backend.deployments.update(name, seed_request, extras=extras)
        )

    async def get_deployment(self, request: Request) -> Response:
        return self._deployment_answer(self.backend.deployments.get(request.path_params["name"]))

    async def list_deployments(self, request: Request) -> Response:
        if d.read_dialect(self.dialect, request) == d.SPEC:
            return await self.control.list_deployments(request)
        seeds = self.backend.deployments.listed_views()
        return json_response({"data": [self._deployment(seed) for seed in seeds]})

    async def deployment_events(self, request: Request) -> Response:
        d.admit(self.dialect, d.PLATFORM)
        name = request.path_params["name"]
        seed = self.backend.deployments.get(name)
        doc = self.backend.deployments.load(name)
        now = self.backend.now()
        marks = sorted(reached(doc["_tl"], now).items(), key=lambda item: item[1])
        events = [(status, iso(at)) for status, at in marks]
        return json_response(shape.deployment_events(name, seed["status"], events))

    # -- datasets -------------------------------------------------------------------------

    async def get_dataset(self, request: Request) -> Response:
        seed = self.backend.datasets.get(request.path_params["name"])
        return self._shaped(seed, shape.dataset(seed))

    async def dataset_by_name(self, request: Request) -> Response:
        d.admit(self.dialect, d.PLATFORM)
        connection = request.query_params.get("connectionName", shape.FILE_CONNECTION)
        if connection != shape.FILE_CONNECTION:
            raise ApiError(
                404,
                f"connection {connection!r} not found; the emulator's datasets are in "
                f"{shape.FILE_CONNECTION!r}",
            )
        seed = self.backend.datasets.get(request.path_params["name"])
        # Under `default`, the union (as every shared read): the seed's `format`, `source`, ...
        return self._shaped(seed, shape.dataset(seed))

    # -- batch inference ------------------------------------------------------------------

    def _batch(self, seed: dict[str, Any], request: Request) -> dict[str, Any]:
        doc = self.backend.batch.load(seed["id"])
        url = None
        if seed["status"] == "completed":
            url = self.backend.batch.results(seed["id"], origin(request))["url"]
        return shape.batch_job(seed, doc, url)

    async def create_batch(self, request: Request) -> Response:
        d.admit(self.dialect, d.PLATFORM)
        seed_request, original = requests.batch(await read_json(request))
        seed = self.backend.batch.create(seed_request, original=original)
        return json_response(self._batch(seed, request))

    async def list_batches(self, request: Request) -> Response:
        d.admit(self.dialect, d.PLATFORM)
        jobs = [self._batch(seed, request) for seed in self.backend.batch.listed_views()]
        limit = request.query_params.get("limit")
        if limit is not None and limit.isdigit():
            jobs = jobs[: int(limit)]
        return json_response({"data": {"jobs": jobs}})

    async def get_batch(self, request: Request) -> Response:
        d.admit(self.dialect, d.PLATFORM)
        seed = self.backend.batch.get(request.path_params["job_id"])
        return json_response(self._batch(seed, request))

    async def cancel_batch(self, request: Request) -> Response:
        d.admit(self.dialect, d.PLATFORM)
        seed = self.backend.batch.cancel(request.path_params["job_id"])
        return json_response(self._batch(seed, request))

    async def batch_results(self, request: Request) -> Response:
        d.admit(self.dialect, d.PLATFORM)
        return json_response(
            self.backend.batch.results(request.path_params["job_id"], origin(request))
        )
