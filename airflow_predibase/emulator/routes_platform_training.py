"""Production's fine-tuning and adapter routes (handlers; `routes_platform` mounts them)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.websockets import WebSocket, WebSocketDisconnect

from airflow_predibase.client.models import FinetuningJobRequest, RepoRequest
from airflow_predibase.emulator import dialect as d
from airflow_predibase.emulator import platform_requests as requests
from airflow_predibase.emulator import platform_wire as shape
from airflow_predibase.emulator.errors import ApiError
from airflow_predibase.emulator.routes_platform_base import PlatformBase, path_version
from airflow_predibase.emulator.wire import iso, json_response, read_json, validate

_METRICS_EVERY = 0.25


class TrainingHandlers(PlatformBase):
    """Fine-tuning jobs (with the metrics stream) and adapter repositories and versions."""

    # -- fine-tuning ----------------------------------------------------------------------

    def _job(self, seed: dict[str, Any]) -> dict[str, Any]:
        return shape.finetuning_job(seed, self.backend.finetuning.load(seed["id"]))

    async def create_job(self, request: Request) -> Response:
        body = await read_json(request)
        repos = self.backend.repos
        seed_request, task, params = requests.finetuning(
            body, lambda ref: repos.ready_version(str(ref))["base_model"]
        )
        seed = self.backend.finetuning.create(seed_request, task=task, params=params)
        return self._shaped(seed, self._job(seed))

    async def list_jobs(self, request: Request) -> Response:
        if self.union:
            return await self.control.list_jobs(request)
        jobs = [self._job(seed) for seed in self.backend.finetuning.listed_views()]
        return json_response({"data": jobs})

    async def get_job(self, request: Request) -> Response:
        seed = self.backend.finetuning.get(request.path_params["job_id"])
        return self._shaped(seed, self._job(seed))

    async def cancel_job(self, request: Request) -> Response:
        seed = self.backend.finetuning.cancel(request.path_params["job_id"])
        return self._shaped(seed, self._job(seed))

    async def update_job(self, request: Request) -> Response:
        d.admit(self.dialect, d.PLATFORM)
        body = await read_json(request)
        if not isinstance(body, dict):
            raise ApiError(422, "request body must be a JSON object")
        # The SDK sends the whole config, nulls included.
        params = {k: v for k, v in body.items() if v is not None}
        task = requests.check_params(params)
        jobs = self.backend.finetuning
        job = jobs.load(request.path_params["job_id"])  # a read would move it on
        settings = validate(
            FinetuningJobRequest,
            {
                "base_model": job["base_model"],
                "dataset": job["dataset"],
                **requests.training_settings(params),
                "task": task,
            },
        )
        seed = jobs.update_params(job["id"], params, settings)
        return json_response(self._job(seed))

    async def timeline(self, request: Request) -> Response:
        d.admit(self.dialect, d.PLATFORM)
        jobs = self.backend.finetuning
        doc = jobs.load(request.path_params["job_id"])
        marks = {status: iso(at) for status, at in self.backend.marks(doc).items()}
        return json_response(shape.timeline(marks))

    async def cost_estimate(self, request: Request) -> Response:
        d.admit(self.dialect, d.PLATFORM)
        # The SDK sends this GET with a JSON body.
        body = await read_json(request)
        if not isinstance(body, dict):
            raise ApiError(422, "request body must be a JSON object")
        self.backend.require_base_model(str(body.get("baseModel")), finetuning=True)
        dataset = self.backend.datasets.connected(requests.dataset_name(body.get("datasetName")))
        rows = len(self.backend.datasets.table(dataset).rows)
        steps = body.get("trainSteps") or (body.get("epochs") or 3) * max(1, -(-rows // 8))
        return json_response(
            {"estimatedCost": round(0.02 * steps, 2), "estimatedDuration": f"{steps * 2}s"}
        )

    async def metrics(self, websocket: WebSocket) -> None:
        """The metrics stream the SDK's `watch=True` reads, until the job has finished."""
        jobs = self.backend.finetuning
        job_id = websocket.path_params["job_id"]
        if self.dialect == d.SPEC:
            error = d.wrong_dialect(d.SPEC, d.PLATFORM)
            await websocket.close(code=4400, reason=error.message[:120])
            return
        if jobs.find(job_id) is None:
            await websocket.close(code=4404, reason=f"fine-tuning job {job_id!r} not found")
            return
        await websocket.accept()
        task = str(shape.job_params(jobs.load(job_id)).get("task") or "sft")
        # Like production, a new connection first replays every checkpoint reached so far
        # (the SDK reconnects and skips the checkpoints it has already shown).
        sent = 0
        try:
            while True:
                seed, doc, step, over = jobs.trained_steps(job_id)
                curve = jobs.curve(doc)
                reached = curve.reached(step)
                for count in range(sent + 1, len(reached) + 1):
                    message = shape.metrics_message(
                        {**seed, "status": "training"},
                        {**(seed.get("progress") or {}), "step": reached[count - 1].step},
                        task,
                        reached[:count],
                        curve.tokens(reached[count - 1].step),
                    )
                    await websocket.send_json(message)
                sent = len(reached)
                if over:
                    final = shape.metrics_message(
                        seed, seed.get("progress"), task, reached, curve.tokens(step)
                    )
                    await websocket.send_json(final)
                    break
                await self.backend.clock.sleep(_METRICS_EVERY)
        except WebSocketDisconnect:
            return
        await websocket.close()

    # -- adapters -------------------------------------------------------------------------

    def _statuses(self, seed_repo: dict[str, Any]) -> dict[str, str | None]:
        jobs = self.backend.finetuning
        out: dict[str, str | None] = {}
        for version in seed_repo.get("versions", []):
            job = version.get("finetuningJob")
            status = jobs.status_of(job) if job else None
            out[str(job)] = None if status is None else status.value
        return out

    def _repo(self, seed: dict[str, Any]) -> dict[str, Any]:
        return shape.repo(seed, self._statuses(seed))

    def _repo_answer(self, seed: dict[str, Any]) -> Response:
        platform = self._repo(seed)
        return json_response(shape.union_repo(seed, platform) if self.union else platform)

    async def create_repo(self, request: Request) -> Response:
        body = await read_json(request)
        if isinstance(body, dict) and body.get("existsOk") and isinstance(body.get("name"), str):
            existing = self.backend.repos.find(body["name"])
            if existing is not None:
                seed = self.backend.repos.view(existing)
                return self._repo_answer(seed)
        # The SDK sends `existsOk`, and `"description": null` when it has none.
        seed_body = body
        if isinstance(body, dict):
            seed_body = {k: v for k, v in body.items() if k != "existsOk" and v is not None}
        self.backend.schemas.check("createRepo", seed_body)
        seed = self.backend.repos.create(validate(RepoRequest, seed_body))
        return self._repo_answer(seed)

    async def list_repos(self, request: Request) -> Response:
        if d.read_dialect(self.dialect, request) == d.SPEC:
            return await self.control.list_repos(request)
        repos = [self._repo(seed) for seed in self.backend.repos.listed_views()]
        limit = request.query_params.get("limit")
        if limit is not None and limit.isdigit():
            repos = repos[: int(limit)]
        return json_response({"data": {"repos": repos}})

    async def get_repo(self, request: Request) -> Response:
        seed = self.backend.repos.get(request.path_params["repo"])
        return self._repo_answer(seed)

    async def get_version(self, request: Request) -> Response:
        if d.read_dialect(self.dialect, request) == d.SPEC:
            return await self.control.get_version(request)
        repo, number = request.path_params["repo"], path_version(request.path_params["version"])
        seed = self.backend.repos.version(repo, number)
        job = seed.get("finetuningJob")
        status = self.backend.finetuning.status_of(job) if job else None
        return json_response(
            shape.adapter_version(seed, None if status is None else status.value, None)
        )

    async def update_version(self, request: Request) -> Response:
        d.admit(self.dialect, d.PLATFORM)
        body = await read_json(request)
        archived = body.get("archived") if isinstance(body, dict) else None
        if not isinstance(archived, bool):
            raise ApiError(422, "field 'archived': must be true or false")
        repo, number = request.path_params["repo"], path_version(request.path_params["version"])
        self.backend.repos.set_archived(repo, number, archived)
        return await self.get_version(request)

    async def delete_version(self, request: Request) -> Response:
        d.admit(self.dialect, d.PLATFORM)
        repo, number = request.path_params["repo"], path_version(request.path_params["version"])
        self.backend.repos.delete_version(repo, number)
        return json_response({"message": f"adapter version {repo}/{number} deleted"})
