"""The two URLs the platform hands out that carry their own secret instead of a token:
the presigned upload target (step 2 of a dataset upload) and batch results downloads."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from airflow_predibase.emulator.backend import Backend
from airflow_predibase.emulator.resources.batch import FILES_ROUTE
from airflow_predibase.emulator.resources.datasets import UPLOAD_ROUTE


class FileRoutes:
    def __init__(self, backend: Backend) -> None:
        self.backend = backend

    def routes(self) -> list[BaseRoute]:
        return [
            Route(UPLOAD_ROUTE + "/{token}", self.upload, methods=["PUT"]),
            Route(FILES_ROUTE + "/{token}", self.download, methods=["GET"]),
        ]

    async def upload(self, request: Request) -> Response:
        declared = request.headers.get("content-length")
        size = int(declared) if declared and declared.isascii() and declared.isdigit() else None
        await self.backend.datasets.receive_upload(
            request.path_params["token"], request.stream(), size, request.headers
        )
        return Response(status_code=200)

    async def download(self, request: Request) -> Response:
        data, media_type = self.backend.batch.download(request.path_params["token"])
        return Response(data, media_type=media_type)
