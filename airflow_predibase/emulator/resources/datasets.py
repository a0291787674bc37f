"""Datasets: connected from a local file, or uploaded through the platform's four steps.

The file is read when the dataset is created (the outcome is fixed then), but the
dataset only reveals it after its `connecting` phase: `connected` with rows and columns,
or `errored` with `lastError`.
"""

from __future__ import annotations

import asyncio
import secrets
from collections import OrderedDict
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from airflow_predibase.client.models import (
    Dataset,
    DatasetRequest,
    DatasetStatus,
    DatasetUploadComplete,
    DatasetUploadRequest,
    DatasetUploadTarget,
)
from airflow_predibase.emulator.context import Context
from airflow_predibase.emulator.errors import ApiError
from airflow_predibase.emulator.lifecycle import Phase
from airflow_predibase.emulator.resources._base import LifecycleResource
from airflow_predibase.emulator.store import Doc
from airflow_predibase.emulator.tabular import FORMATS, Table, TableError, detect_format, read_table
from airflow_predibase.emulator.wire import iso, require_text, wire
from airflow_predibase.kinds import DATASET

UPLOAD_ROUTE = "/__uploads__"
_TABLE_CACHE = 8


class Datasets(LifecycleResource):
    registered = DATASET
    aliases = ("datasets",)
    state_key = "datasets"
    stored_as = "dataset"

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        # Parsed files, so training and batch scoring do not re-read them per request.
        self._tables: OrderedDict[str, Table] = OrderedDict()

    def plan(self, doc: Doc, status: str) -> list[Phase]:
        if status == DatasetStatus.CONNECTING:
            fate = doc["_fate"]["status"]
            return [(status, self.ctx.profile.dataset_connecting), (fate, None)]
        return [(status, None)]

    def view(self, doc: Doc) -> dict[str, Any]:
        status = self.status(doc)
        fields: dict[str, Any] = {
            "name": doc["name"],
            "id": doc["id"],
            "status": status,
            "source": doc.get("source"),
            "description": doc.get("description"),
            "format": doc.get("format"),
            "size_bytes": doc.get("size_bytes"),
            "created_at": iso(doc["created_at"]),
        }
        if status == DatasetStatus.CONNECTED:
            fields["row_count"] = doc["_fate"].get("row_count")
            fields["columns"] = doc["_fate"].get("columns")
        elif status == DatasetStatus.ERRORED:
            fields["lastError"] = doc.get("_error") or doc["_fate"].get("error") or "errored"
        return wire(Dataset, fields)

    # -- for fine-tuning and batch inference -------------------------------------------------

    def connected(self, name: str) -> Doc:
        """The dataset `name`, which must exist (404) and be connected (400)."""
        doc = self.load(name)
        status = self.status(doc)
        if status != DatasetStatus.CONNECTED:
            raise ApiError(400, f"dataset {name!r} is {status}, not connected")
        return doc

    def table(self, doc: Doc) -> Table:
        """The parsed rows of a connected dataset."""
        key = doc["_blob"]
        table = self._tables.get(key)
        if table is None:
            data = self.store.get_blob(key)
            if data is None:
                raise ApiError(404, f"the file of dataset {doc['name']!r} is gone")
            table = read_table(data, doc["format"])
            self._tables[key] = table
            while len(self._tables) > _TABLE_CACHE:
                self._tables.popitem(last=False)
        self._tables.move_to_end(key)
        return table

    # -- connect from a source -------------------------------------------------------------

    async def connect(self, request: DatasetRequest) -> dict[str, Any]:
        name = require_text(request.name, "name")
        self.require_free(name)
        if not request.source:
            raise ApiError(
                400, "field 'source' is required to connect a dataset (or use /datasets/upload)"
            )
        data, fmt, problem = await asyncio.to_thread(self._read_source, request.source)
        return await self._create(name, request.source, request.description, fmt, data, problem)

    def _read_source(self, source: str) -> tuple[bytes | None, str | None, str | None]:
        """The source's bytes and format, or the reason the platform could not read it."""
        parts = urlsplit(source)
        if parts.scheme == "file":
            path = Path(unquote(parts.path))
        elif parts.scheme and len(parts.scheme) > 1:  # one letter: a Windows drive
            return (
                None,
                None,
                (
                    f"cannot read {source!r}: the emulator connects local files only "
                    "(file:///path/to/data.jsonl or a plain path); upload the file instead"
                ),
            )
        else:
            path = Path(source)
        fmt = detect_format(path.name)
        if fmt is None:
            return None, None, f"unsupported file type {path.name!r}; use {', '.join(FORMATS)}"
        try:
            size = path.stat().st_size
            if size > self.ctx.config.max_upload_bytes:
                return None, fmt, f"file is {size} bytes, over the {self._limit()} limit"
            return path.read_bytes(), fmt, None
        except OSError as exc:
            return None, fmt, f"cannot read {source!r}: {exc.strerror or exc}"

    # -- the upload flow ---------------------------------------------------------------------

    def start_upload(self, request: DatasetUploadRequest, base_url: str) -> dict[str, Any]:
        file_name = require_text(request.file_name, "fileName")
        fmt = detect_format(file_name, request.mime_type)
        if fmt is None:
            raise ApiError(
                400,
                f"unsupported file type {file_name!r} ({request.mime_type}); "
                f"supported formats: {', '.join(FORMATS)}",
            )
        token = secrets.token_urlsafe(18)
        upload = {
            "token": token,
            "fileName": file_name,
            "mimeType": request.mime_type,
            "format": fmt,
            "created_at": self.ctx.now(),
            "size": None,
            "headers": dict(self.ctx.config.upload_required_headers),
        }
        self.store.put("upload", token, upload)
        target = {"presignedUrl": f"{base_url}{UPLOAD_ROUTE}/{token}", "uploadToken": token}
        # Production announces the headers its storage signed the URL with; the PUT must
        # send them (the official SDK reads this map).
        return {**wire(DatasetUploadTarget, target), "requiredHeaders": upload["headers"]}

    async def receive_upload(
        self,
        token: str,
        chunks: AsyncIterator[bytes],
        declared: int | None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        """Step 2: the raw PUT. Only the token in the URL authorises it; it must carry the
        `requiredHeaders` step 1 announced, with their values, as signed storage URLs do."""
        upload = self.store.get("upload", token)
        if upload is None:
            raise ApiError(404, "unknown or expired upload URL")
        sent = {k.lower(): v for k, v in (headers or {}).items()}
        missing = [
            f"{name}: {value}"
            for name, value in upload.get("headers", {}).items()
            if sent.get(name.lower()) != value
        ]
        if missing:
            raise ApiError(
                403,
                "the upload PUT must send the requiredHeaders from POST /v2/datasets/upload; "
                f"missing or different: {', '.join(missing)}",
            )
        limit = self.ctx.config.max_upload_bytes
        if declared is not None and declared > limit:
            raise ApiError(413, f"file is {declared} bytes, over the {self._limit()} limit")
        received = bytearray()
        async for chunk in chunks:
            received.extend(chunk)
            if len(received) > limit:
                raise ApiError(413, f"file is over the {self._limit()} limit")
        self.store.put_blob(f"upload/{token}", bytes(received))
        upload["size"] = len(received)
        self.store.put("upload", token, upload)

    async def complete_upload(self, request: DatasetUploadComplete) -> dict[str, Any]:
        name = require_text(request.name, "name")
        upload = self.store.get("upload", request.upload_token)
        if upload is None:
            raise ApiError(404, "unknown uploadToken; start with POST /datasets/upload")
        if upload["size"] is None:
            raise ApiError(400, "nothing was uploaded for this uploadToken; PUT the file first")
        self.require_free(name)
        data = self.store.get_blob(f"upload/{request.upload_token}") or b""
        self.store.delete("upload", request.upload_token)
        self.store.delete_blob(f"upload/{request.upload_token}")
        return await self._create(
            name, upload["fileName"], request.description, upload["format"], data, None
        )

    # -- shared ------------------------------------------------------------------------------

    def _limit(self) -> str:
        return f"{self.ctx.config.max_upload_bytes / (1024 * 1024):g} MB"

    async def _create(
        self,
        name: str,
        source: str | None,
        description: str | None,
        fmt: str | None,
        data: bytes | None,
        problem: str | None,
    ) -> dict[str, Any]:
        fate: dict[str, Any]
        if problem is None and data is not None and fmt is not None:
            try:
                table = await asyncio.to_thread(read_table, data, fmt)
            except TableError as exc:
                fate = {"status": DatasetStatus.ERRORED.value, "error": str(exc)}
            else:
                fate = {
                    "status": DatasetStatus.CONNECTED.value,
                    "row_count": len(table.rows),
                    "columns": table.columns,
                }
        else:
            fate = {"status": DatasetStatus.ERRORED.value, "error": problem or "unreadable"}
        scheduled = self.take_failure()
        if scheduled is not None:
            fate = {"status": DatasetStatus.ERRORED.value, "error": scheduled}
        # Re-checked after the awaits: another request may have taken the name meanwhile.
        self.require_free(name)
        dataset_id = self.ctx.new_id()
        doc: Doc = {
            "name": name,
            "id": dataset_id,
            "source": source,
            "description": description,
            "format": fmt,
            "size_bytes": None if data is None else len(data),
            "created_at": self.ctx.now(),
            "_blob": f"dataset/{dataset_id}",
            "_fate": fate,
        }
        if data is not None:
            self.store.put_blob(doc["_blob"], data)
        self.ctx.begin(doc, self.plan(doc, DatasetStatus.CONNECTING.value))
        self.save(doc)
        return self.view(doc)
