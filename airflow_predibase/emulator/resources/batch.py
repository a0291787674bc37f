"""Batch inference: `queued` -> `running` -> `completed`, with a JSONL file of results.

Rows are scored when the job is created (adapters must be ready by then, as they must be
loadable on the platform), and the results are revealed only once the job completes.
Output rows come back shuffled (seeded by the job ID): callers must match on `custom_id`.
"""

from __future__ import annotations

import json
import random
import secrets
from typing import Any

from pydantic import ValidationError

from airflow_predibase.client.models import (
    BatchInferenceJob,
    BatchInferenceJobRequest,
    BatchInferenceJobStatus,
    BatchInferenceResults,
    BatchOutputRow,
    ChatCompletionRequest,
)
from airflow_predibase.client.models.configs import SECRET_FIELDS
from airflow_predibase.emulator.context import Context
from airflow_predibase.emulator.errors import ApiError
from airflow_predibase.emulator.formats import chat_completion
from airflow_predibase.emulator.lifecycle import Phase
from airflow_predibase.emulator.model_behaviour import generate
from airflow_predibase.emulator.resources._base import LifecycleResource
from airflow_predibase.emulator.resources.datasets import Datasets
from airflow_predibase.emulator.resources.inference import answer
from airflow_predibase.emulator.resources.repos import Repos
from airflow_predibase.emulator.store import Doc
from airflow_predibase.emulator.wire import describe, iso, wire
from airflow_predibase.kinds import BATCH_INFERENCE_JOB

S = BatchInferenceJobStatus
#: The server settings a job keeps and shows back: all but its secrets (`hf_token`).
SERVER_SETTINGS: tuple[str, ...] = tuple(
    sorted(BatchInferenceJobRequest.SERVER_CONFIG_FIELDS - SECRET_FIELDS - {"base_model"})
)
FILES_ROUTE = "/__files__"
_ERROR_CODES = {400: "invalid_request", 404: "adapter_not_found", 424: "adapter_load_failed"}


def chat_prompt(request: ChatCompletionRequest) -> tuple[str, str]:
    """(what the model is asked: the last user message, all the text it reads)."""
    user = [m.content for m in request.messages if m.role == "user"]
    question = user[-1] if user else request.messages[-1].content
    return question, "\n".join(m.content for m in request.messages)


class BatchJobs(LifecycleResource):
    registered = BATCH_INFERENCE_JOB
    aliases = ("batch", "batch_jobs")
    state_key = "batch_jobs"
    stored_as = "batch"
    key_field = "id"

    def __init__(self, ctx: Context, datasets: Datasets, repos: Repos) -> None:
        super().__init__(ctx)
        self.datasets = datasets
        self.repos = repos

    def plan(self, doc: Doc, status: str) -> list[Phase]:
        profile = self.ctx.profile
        if status == S.QUEUED:
            return [(status, profile.batch_queued), *self.plan(doc, S.RUNNING.value)]
        if status == S.RUNNING:
            return [(status, profile.batch_running), (doc["_fate"]["status"], None)]
        return [(status, None)]

    def view(self, doc: Doc) -> dict[str, Any]:
        position = self.ctx.position(doc)
        status = S(position.status)
        marks = self.ctx.marks(doc)
        fields: dict[str, Any] = {
            "id": doc["id"],
            "status": status,
            "base_model": doc["base_model"],
            "dataset": doc["dataset"],
            "output": doc.get("output"),
            "description": doc.get("description"),
            **doc.get("_server", {}),
            "created_at": iso(doc["created_at"]),
            "started_at": iso(marks.get(S.RUNNING.value)),
            "completed_at": iso(marks.get(status.value)) if status.is_terminal else None,
        }
        if S.RUNNING.value in marks:
            done = 1.0 if status == S.COMPLETED else 0.0
            if status == S.RUNNING:
                done = position.fraction(self.ctx.now())
            fields["total_rows"] = doc["_total"]
            fields["completed_rows"] = int(doc["_ok"] * done)
            fields["failed_rows"] = int(doc["_failed"] * done)
        if status == S.ERRORED:
            fields["error"] = doc.get("_error") or doc["_fate"].get("error") or "batch failed"
        return wire(BatchInferenceJob, fields)

    # -- operations ---------------------------------------------------------------------------

    def create(
        self, request: BatchInferenceJobRequest, *, original: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """A new job; `original` is production's request body, shown back as it was sent."""
        ctx = self.ctx
        ctx.require_base_model(request.base_model)
        dataset = self.datasets.connected(request.dataset)
        rows = self.datasets.table(dataset).rows
        job_id = ctx.new_id()
        fate: dict[str, Any] = {"status": S.COMPLETED.value}
        results: list[dict[str, Any]] = []
        try:
            results = self._score(job_id, request.base_model, rows)
        except ValueError as exc:
            fate = {"status": S.ERRORED.value, "error": f"invalid input file: {exc}"}
        scheduled = self.take_failure()
        if scheduled is not None:
            fate = {"status": S.ERRORED.value, "error": scheduled}
        random.Random(job_id).shuffle(results)
        token = secrets.token_urlsafe(18)
        blob = f"batch/{job_id}"
        self.store.put_blob(blob, "".join(json.dumps(r) + "\n" for r in results).encode())
        self.store.put("file", token, {"blob": blob, "media_type": "application/jsonl"})
        failed = sum(1 for r in results if r["error"] is not None)
        doc: Doc = {
            "id": job_id,
            "base_model": request.base_model,
            "dataset": request.dataset,
            "output": request.output,
            "description": request.description,
            "created_at": ctx.now(),
            "_server": request.model_dump(
                mode="json", include=set(SERVER_SETTINGS), exclude_none=True
            ),
            "_fate": fate,
            "_file": token,
            "_total": len(rows),
            "_ok": len(results) - failed,
            "_failed": failed,
        }
        if original is not None:
            doc["_original"] = original
        ctx.begin(doc, self.plan(doc, S.QUEUED.value))
        self.save(doc)
        return self.view(doc)

    def _score(self, job_id: str, base_model: str, rows: list[dict[str, Any]]) -> list[Doc]:
        """One output row per input row; ValueError if the file is not in batch format."""
        seen: set[str] = set()
        out: list[Doc] = []
        for number, row in enumerate(rows, start=1):
            custom_id = row.get("custom_id")
            if not isinstance(custom_id, str) or not custom_id:
                raise ValueError(f"row {number} has no custom_id")
            if custom_id in seen:
                raise ValueError(f"row {number} repeats custom_id {custom_id!r}")
            seen.add(custom_id)
            body = row.get("body")
            if isinstance(body, str):  # CSV cells hold the body as JSON text
                try:
                    body = json.loads(body)
                except ValueError:
                    raise ValueError(f"row {number} body is not JSON") from None
            try:
                request = ChatCompletionRequest.model_validate(body)
            except ValidationError as exc:
                raise ValueError(f"row {number} body: {describe(exc)}") from None
            if not request.messages:
                raise ValueError(f"row {number} body has no messages")
            out.append(self._row(job_id, number, custom_id, base_model, request))
        return out

    def _row(
        self, job_id: str, number: int, custom_id: str, base_model: str, req: ChatCompletionRequest
    ) -> Doc:
        question, text = chat_prompt(req)
        row: Doc = {"id": f"batch_req_{job_id[:8]}_{number}", "custom_id": custom_id}
        try:
            reply = answer(self.repos, base_model, req.model, question)
        except ApiError as exc:
            row["response"] = None
            row["error"] = {"code": _ERROR_CODES.get(exc.status, "error"), "message": exc.message}
        else:
            gen = generate(reply, text, req.max_tokens, None)
            created = int(self.ctx.now())
            body = chat_completion(gen, req.model or base_model, f"chatcmpl-{row['id']}", created)
            row["response"] = {"status_code": 200, "request_id": row["id"], "body": body}
            row["error"] = None
        BatchOutputRow.model_validate(row)
        return row

    def cancel(self, job_id: str) -> dict[str, Any]:
        doc = self.load(job_id)
        if not S(self.status(doc)).is_terminal:
            self.ctx.begin(doc, [(S.CANCELED.value, None)])
            self.save(doc)
        return self.view(doc)

    def results(self, job_id: str, base_url: str) -> dict[str, Any]:
        doc = self.load(job_id)
        status = self.status(doc)
        if status != S.COMPLETED:
            raise ApiError(409, f"results are available once the job is completed (it is {status})")
        return wire(BatchInferenceResults, {"url": f"{base_url}{FILES_ROUTE}/{doc['_file']}"})

    def download(self, token: str) -> tuple[bytes, str]:
        """A results file by its secret token (no auth, like a presigned URL)."""
        file = self.store.get("file", token)
        data = None if file is None else self.store.get_blob(file["blob"])
        if file is None or data is None:
            raise ApiError(404, "unknown or expired download URL")
        return data, str(file["media_type"])
