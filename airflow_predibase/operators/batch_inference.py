"""BatchInferenceOperator: score a dataset server side, exactly once per task instance, and
account for every row."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import AirflowException
from pydantic import ValidationError

from airflow_predibase.exceptions import PredibaseInvalidParameter, PredibaseJobFailed
from airflow_predibase.kinds import BATCH_INFERENCE_JOB
from airflow_predibase.operators._base import (
    LOST_CREATE_WINDOW,
    PredibaseBaseOperator,
    coerce_int,
    coerce_mapping,
    fail_fast_on_rejection,
    is_templated,
    lost_create_window_seconds,
)
from airflow_predibase.operators._dataset_files import (
    check_records,
    file_format,
    iter_records,
    storage_path,
)
from airflow_predibase.operators._settings import AirflowSecret, explain
from airflow_predibase.operators._validation import check_name
from airflow_predibase.waiting.events import JobEvent

if TYPE_CHECKING:
    from airflow_predibase.client.models import (
        BatchInferenceJobRequest,
        BatchOutputRow,
    )
    from airflow_predibase.lineage import BatchFacts

_SAMPLE = 5
#: Server settings given through `server_config` (the SDK's `BatchInferenceServerConfig`
#: without `base_model` and `hf_token`, which are parameters of their own).
SERVER_CONFIG_KEYS = ("backend", "custom_args", "lorax_image_tag", "quantization")


@dataclass(frozen=True)
class RowCounts:
    """How the rows of a batch job came out."""

    rows: int
    succeeded: int
    failed: int


def _sample(ids: Sequence[str]) -> str:
    more = f", ... ({len(ids) - _SAMPLE} more)" if len(ids) > _SAMPLE else ""
    return ", ".join(repr(i) for i in ids[:_SAMPLE]) + more


def row_failed(row: BatchOutputRow) -> bool:
    return row.error is not None or row.response is None or row.response.status_code >= 400


def reconcile(
    results: Sequence[BatchOutputRow],
    *,
    job_id: str,
    total_rows: int | None,
    expected_rows: int | None = None,
    expected_ids: Collection[str] | None = None,
) -> tuple[list[BatchOutputRow], RowCounts]:
    """The results sorted by custom_id, and their counts, once every input row is known to
    have exactly one result. Otherwise PredibaseJobFailed names the offending custom_ids.

    The input rows are known by count (`total_rows` from the platform, `expected_rows` from
    the user) and, when the input file is given, by custom_id (`expected_ids`).
    """

    seen = Counter(row.custom_id for row in results)
    problems: list[str] = []
    duplicated = sorted(i for i, n in seen.items() if n > 1)
    if duplicated:
        problems.append(
            f"{len(duplicated)} custom_id(s) have several results: {_sample(duplicated)}"
        )
    if expected_ids is not None:
        missing = sorted(set(expected_ids) - seen.keys())
        unexpected = sorted(seen.keys() - set(expected_ids))
        if missing:
            problems.append(f"{len(missing)} input row(s) have no result: {_sample(missing)}")
        if unexpected:
            problems.append(
                f"{len(unexpected)} result(s) match no input row: {_sample(unexpected)}"
            )
    for label, count in (("total_rows", total_rows), ("expected_rows", expected_rows)):
        if count is not None and count != len(seen):
            problems.append(f"{label} is {count} but {len(seen)} distinct custom_ids came back")
    if problems:
        raise PredibaseJobFailed(
            f"batch inference job {job_id} did not return exactly one result per input row: "
            + "; ".join(problems),
            resource_id=job_id,
            remote_status="completed",
        )
    failed = sum(1 for row in results if row_failed(row))
    ordered = sorted(results, key=lambda row: row.custom_id)
    return ordered, RowCounts(len(results), len(results) - failed, failed)


def write_results(location: Any, rows: Sequence[BatchOutputRow]) -> None:
    """One JSON line per result, in the given order, to a local or object-storage path."""

    path = storage_path(location)
    if getattr(path, "protocol", "") in ("", "file", "local"):
        # Not on object stores: there a mkdir can mean creating a bucket.
        path.parent.mkdir(parents=True, exist_ok=True)
    lines = (json.dumps(row.model_dump(mode="json", by_alias=True)) + "\n" for row in rows)
    path.write_bytes("".join(lines).encode())


def read_input_ids(location: Any) -> list[str]:
    """The custom_ids of a batch input file (CSV, JSONL, JSON, or Parquet with pyarrow)."""

    path = storage_path(location)
    where = str(location)
    records = iter_records(path.read_bytes(), file_format(path.name), where)
    if records is None:
        raise ValueError(f"cannot read {where}: reading Parquet needs pyarrow")
    ids: list[str] = []

    def collect() -> Iterator[dict[str, Any]]:
        for record in records:
            ids.append(str(record.get("custom_id")))
            yield record

    check_records(collect(), ("custom_id",), where, "batch")
    return ids


def _reason(row: BatchOutputRow) -> str:
    if row.error is not None:
        return row.error.message or row.error.code or "error"
    return "no response" if row.response is None else f"HTTP {row.response.status_code}"


class BatchInferenceOperator(PredibaseBaseOperator):
    """Run a batch inference job on a dataset and check that every row has one result.

    Rows are in the OpenAI batch format (``custom_id``, ``body``); each row picks the base
    model (``body.model: ""``) or an adapter (``"<repo>/<version>"``), so one job can score
    several adapters side by side. The job's console URL and ID are logged and pushed to
    XCom (``job_id``) as soon as it exists. A retry, a worker crash or a lost create
    response re-attaches to the job already started for this task instance (see
    docs/idempotency.md).

    Once the job completes, its results are downloaded and reconciled: every input row
    must have exactly one result, matched on ``custom_id`` (against the job's
    ``total_rows``, ``expected_rows`` and, if given, the ids in ``input_file``). A missing
    or duplicated row fails the task, naming some of the custom_ids. Rows that came back
    with an error are counted as failed, logged, and kept in the results.

    Returns ``{"job_id", "output", "results_path", "rows", "succeeded", "failed"}``, where
    ``output`` is ``results_path``, else the job's output location, else ``None`` (never the
    results file's URL: whoever holds it can read the results).

    :param base_model: the base model serving the job.
    :param dataset: name of a connected dataset of batch rows.
    :param output: where the platform should write its results (passed through).
    :param server_config: the server the job runs on, the SDK's beta
        ``BatchInferenceServerConfig`` (a mapping, or JSON from a template):
        ``custom_args``, ``lorax_image_tag``, ``quantization`` (none, fp8,
        bitsandbytes-nf4) and ``backend`` (v1, v2, v3). Its ``base_model`` is
        ``base_model`` above.
    :param hf_token: a Hugging Face token for gated or private base models, as an
        :class:`~airflow_predibase.operators.AirflowSecret` (a connection or a Variable,
        read when the task runs; never a literal or a template).
    :param description: free text for the job; the idempotency marker is appended to it.
    :param results_path: write the results here as JSONL, one line per row, sorted by
        custom_id: a local path or a URL Airflow's object storage writes (``s3://...``).
    :param input_file: the file the dataset was made from; every custom_id in it must
        then have a result, and missing ones are named.
    :param expected_rows: the number of input rows, if known.
    :param rerun_on_clear: when a user clears this task after its job completed, start a
        new job (True, default) or reuse the completed one (False). A retry never starts a
        second job for one that completed.
    :param lost_create_window: seconds (or a timedelta) to keep looking for the job when
        the answer to its create request is lost, before sending the request again
        (default 120). A job the platform commits later than this can be started twice
        (see docs/idempotency.md).
    :param wait_for_completion: wait for the job and reconcile its results (True, default);
        with False, start the job (exactly once, as always) and return its ID at once, also
        pushed to XCom as ``job_id``, for a ``WaitForJobSensor(job_type=
        "batch_inference_job")``. Results are then neither downloaded nor reconciled.
    See :class:`PredibaseBaseOperator` for the connection, waiting and timeout parameters.
    """

    template_fields: Sequence[str] = (
        "base_model",
        "dataset",
        "output_location",
        "server_config",
        "description",
        "results_path",
        "input_file",
        "expected_rows",
    )
    template_fields_renderers = {"server_config": "json"}
    kind = BATCH_INFERENCE_JOB
    _lineage: BatchFacts | None = None

    def __init__(
        self,
        *,
        base_model: str,
        dataset: str,
        output: str | None = None,
        server_config: dict[str, Any] | str | None = None,
        hf_token: AirflowSecret | dict[str, str] | None = None,
        description: str | None = None,
        results_path: Any = None,
        input_file: Any = None,
        expected_rows: int | str | None = None,
        rerun_on_clear: bool = True,
        lost_create_window: timedelta | float = LOST_CREATE_WINDOW,
        wait_for_completion: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        check_name("dataset", dataset)
        self.wait_for_completion = wait_for_completion
        if not is_templated(expected_rows):
            coerce_int(expected_rows, "expected_rows")
        self.base_model = base_model
        self.dataset = dataset
        # `output` is BaseOperator's XComArg property, so the parameter lives under this name.
        self.output_location = output
        self.server_config = server_config
        try:  # not a template field: a reference, read on the worker
            self.hf_token = None if hf_token is None else AirflowSecret.parse(hf_token, "hf_token")
            if not is_templated(server_config):
                self._server_config()
        except ValueError as error:
            raise PredibaseInvalidParameter(
                f"BatchInferenceOperator {self.task_id}: {error}"
            ) from None
        self.description = description
        self.results_path = results_path
        self.input_file = input_file
        self.expected_rows = expected_rows
        self.rerun_on_clear = rerun_on_clear
        self.lost_create_window = lost_create_window_seconds(lost_create_window)
        self._input_ids: list[str] | None = None

    def _request(self) -> BatchInferenceJobRequest:
        """The validated job request from the rendered fields; reads `input_file`."""
        from airflow_predibase.client.models import BatchInferenceJobRequest

        try:
            check_name("dataset", self.dataset)
            expected = coerce_int(self.expected_rows, "expected_rows")
            if expected is not None and expected < 1:
                raise ValueError(f"expected_rows must be at least 1, got {expected}")
            server_config = self._server_config()
            if self.hf_token is not None:
                server_config["hf_token"] = self.hf_token.resolve("hf_token")
            request = BatchInferenceJobRequest(
                base_model=self.base_model,
                dataset=self.dataset,
                output=self.output_location or None,
                description=self.description,
                **server_config,
            )
            if self.input_file:
                self._input_ids = read_input_ids(self.input_file)
            return request
        except ValidationError as error:
            raise PredibaseInvalidParameter(
                f"BatchInferenceOperator {self.task_id}: {explain(error)}"
            ) from None
        except ValueError as error:
            raise PredibaseInvalidParameter(
                f"BatchInferenceOperator {self.task_id}: {error}"
            ) from None
        except OSError as error:
            raise AirflowException(f"cannot read input_file {self.input_file}: {error}") from error

    def _server_config(self) -> dict[str, Any]:
        """`server_config` checked against the SDK's `BatchInferenceServerConfig`."""
        from airflow_predibase.client.models import BatchInferenceServerConfig

        # A copy: the token joins it, and the operator's own field must never hold it.
        config = dict(coerce_mapping(self.server_config, "server_config"))
        own = sorted(set(config) & {"base_model", "hf_token"})
        if own:
            raise ValueError(
                f"server_config sets {', '.join(own)}: pass "
                f"{' and '.join(f'{k}=' for k in own)} to BatchInferenceOperator instead"
            )
        unknown = sorted(set(config) - set(SERVER_CONFIG_KEYS))
        if unknown:
            raise ValueError(
                f"server_config has unknown keys {unknown}; valid keys: "
                f"{', '.join(SERVER_CONFIG_KEYS)}"
            )
        try:
            BatchInferenceServerConfig.model_validate({"base_model": "-", **config})
        except ValidationError as error:
            raise ValueError(explain(error, default="server_config")) from None
        return config

    @fail_fast_on_rejection
    def execute(self, context: Any) -> Any:
        request = self._request()
        client = self.client
        return self._run_job(
            context,
            list_jobs=client.list_batch_inference_jobs,
            get_job=client.get_batch_inference_job,
            create=lambda text: client.create_batch_inference_job(
                request.model_copy(update={"description": text})
            ),
            request=request,
            rerun_on_clear=self.rerun_on_clear,
            lost_create_window=self.lost_create_window,
            wait=self.wait_for_completion,
        )

    def _on_success(self, context: Any, event: JobEvent) -> dict[str, Any]:
        from airflow_predibase.client.models import BatchInferenceJob
        from airflow_predibase.lineage import BatchFacts

        job = BatchInferenceJob.model_validate(event.resource or {"id": event.resource_id})
        self._check_own(job, event)
        if self.input_file and self._input_ids is None:  # resumed after deferral
            self._input_ids = read_input_ids(self.input_file)
        client = self.client
        results = client.download_batch_results(job.id)
        expected_rows = coerce_int(self.expected_rows, "expected_rows")
        if job.total_rows is None and expected_rows is None and self._input_ids is None:
            self.log.warning(
                "the platform did not report total_rows: only duplicates can be checked; "
                "pass expected_rows or input_file to check that no row is missing"
            )
        ordered, counts = reconcile(
            results,
            job_id=job.id,
            total_rows=job.total_rows,
            expected_rows=expected_rows,
            expected_ids=self._input_ids,
        )
        failed = [row for row in ordered if row_failed(row)]
        if failed:
            examples = "; ".join(f"{row.custom_id}: {_reason(row)}" for row in failed[:_SAMPLE])
            self.log.warning("%d of %d rows failed, e.g. %s", counts.failed, counts.rows, examples)
        if self.results_path:
            write_results(self.results_path, ordered)
            self.log.info("wrote %d results to %s", len(ordered), self.results_path)
        output = self.results_path or job.output or self.output_location
        context["ti"].xcom_push(key="job_id", value=job.id)
        self.log.info(
            "batch inference job %s: %d rows, %d succeeded, %d failed",
            job.id,
            counts.rows,
            counts.succeeded,
            counts.failed,
        )
        base_model = job.base_model or self.base_model
        self._lineage = BatchFacts(
            job_id=job.id,
            dataset=job.dataset or self.dataset,
            base_model=base_model,
            models=BatchFacts.models_of(ordered, base_model),
            # Named locations only: the results URL may carry a download secret.
            outputs=tuple(str(o) for o in (self.results_path, job.output) if o),
            rows=counts.rows,
            succeeded=counts.succeeded,
            failed=counts.failed,
        )
        return {
            "job_id": job.id,
            # Never the results download URL: it is a capability (anyone holding it reads).
            "output": str(output) if output else None,
            "results_path": str(self.results_path) if self.results_path else None,
            "rows": counts.rows,
            "succeeded": counts.succeeded,
            "failed": counts.failed,
        }

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        """OpenLineage: the dataset and the adapters that answered -> the results, with the
        row counts as the ``predibase_batchInference`` run facet (docs/lineage.md)."""
        from airflow_predibase.lineage import build

        return build(self._lineage, self.hook.get_settings)
