"""Archive, unarchive and delete one adapter version under the `spec` dialect.

Production has `PUT|DELETE /v2/repos/{repo}/version/{tag}` (`routes_platform_training`
serves them under `platform` and `default`). The seed spec has no route for it, so a client
speaking the seed uses the same paths; a `spec` emulator answers them here, in the seed's
version shape, with the same rules (a version still training cannot be deleted).
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from airflow_predibase.emulator.backend import Backend
from airflow_predibase.emulator.dialect import SPEC
from airflow_predibase.emulator.errors import ApiError
from airflow_predibase.emulator.routes_platform_base import path_version
from airflow_predibase.emulator.wire import json_response, read_json

_PATH = "/repos/{repo}/version/{version}"


def seed_version_routes(backend: Backend, dialect: str) -> list[BaseRoute]:
    """The routes, for a `spec` emulator (the other dialects already have production's)."""
    if dialect != SPEC:
        return []

    async def update(request: Request) -> Response:
        body = await read_json(request)
        backend.schemas.check("updateAdapterVersion", body)
        archived = body.get("archived") if isinstance(body, dict) else None
        if not isinstance(archived, bool):
            raise ApiError(422, "field 'archived': must be true or false")
        repo, number = request.path_params["repo"], path_version(request.path_params["version"])
        backend.repos.set_archived(repo, number, archived)
        return json_response(backend.repos.version(repo, number))

    async def delete(request: Request) -> Response:
        repo, number = request.path_params["repo"], path_version(request.path_params["version"])
        backend.repos.delete_version(repo, number)
        return json_response({"message": f"adapter version {repo}/{number} deleted"})

    return [Route(_PATH, update, methods=["PUT"]), Route(_PATH, delete, methods=["DELETE"])]
