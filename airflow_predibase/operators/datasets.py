"""CreateDatasetOperator: upload a file (or connect a source) as a dataset, once per content.

The file is checked on the worker before anything is sent: its format, its size and that
every row has the columns the intended task needs. A dataset name can never be reused for
other data (Predibase has no delete), so the content's fingerprint goes into the dataset's
description as ``[sha256:<16 hex>]``; that is how a re-run recognises its own upload.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NoReturn

from airflow.providers.common.compat.sdk import AirflowException

from airflow_predibase.client.errors import ConflictError, NotFoundError, OutcomeUnknownError
from airflow_predibase.exceptions import PredibaseInvalidParameter
from airflow_predibase.kinds import DATASET
from airflow_predibase.operators._base import (
    PredibaseBaseOperator,
    check_choice,
    fail_fast_on_rejection,
    is_templated,
)
from airflow_predibase.operators._dataset_files import (
    DatasetFile,
    file_format,
    fingerprint,
    read_dataset_file,
    task_columns,
)
from airflow_predibase.operators._validation import check_name
from airflow_predibase.waiting.events import JobEvent

if TYPE_CHECKING:
    from airflow_predibase.client import PredibaseClient
    from airflow_predibase.client.models import Dataset
    from airflow_predibase.lineage import DatasetFacts

TASKS = ("sft", "continued_pretraining", "grpo", "classification", "batch")
IF_EXISTS = ("reuse", "version")
FINGERPRINT_RE = re.compile(r"\[sha256:(?P<hex>[0-9a-f]{16})\]")
_SAMPLE = 5


_IF_EXISTS_HINT = (
    " (Predibase cannot delete or overwrite a dataset, so there is no 'replace': 'version' "
    "uploads new content as <name>-v2, <name>-v3, ...)"
)


def fingerprint_of(dataset: Dataset) -> str | None:
    """The fingerprint this operator stored in the dataset's description, if any."""
    match = FINGERPRINT_RE.search(dataset.description or "")
    return match["hex"] if match else None


def version_of(name: str, base: str) -> int | None:
    """1 for `base` itself, N for `<base>-vN`, None for any other name."""
    if name == base:
        return 1
    match = re.fullmatch(re.escape(base) + r"-v(\d+)", name)
    return int(match[1]) if match else None


# -- the operator -------------------------------------------------------------------------


@dataclass(frozen=True)
class _Payload:
    """What goes up: a checked file or a source, and its fingerprint."""

    fingerprint: str
    file: DatasetFile | None = None
    source: str | None = None


class CreateDatasetOperator(PredibaseBaseOperator):
    """Upload a file (or connect a source) as a Predibase dataset; return the dataset name.

    The file is checked before any request, by the same rules the platform (and the
    emulator) apply, from `airflow_predibase.dataset_files`: format (by extension:
    ``.csv``, ``.jsonl`` or ``.ndjson``, ``.json``, ``.parquet``), size (at most 100 MB),
    that it parses, that every row has the columns ``task`` needs, and that an optional
    ``split`` column holds ``train`` or ``evaluation``. The upload then waits until the
    dataset is ``connected``; ``errored`` fails the task with the platform's reason.

    Idempotent by content: a fingerprint of the file (of the ``source`` URI when connecting)
    is stored in the dataset's description. If a dataset with this name already holds the
    same content it is reused without an upload; if it holds other content the task fails,
    unless ``if_exists="version"``. See docs/operators/create_dataset.md.

    :param name: dataset name: non-empty, without ``/``, ``\\``, ``?``, ``#``, ``%``,
        control characters or leading/trailing spaces (checked when the DAG is parsed, and
        again once rendered).
    :param file: the file to upload: a local path, or a URL Airflow's object storage reads
        (``file://...``, ``s3://...`` with the Amazon provider installed, ...), or an
        ``ObjectStoragePath``.
    :param source: instead of ``file``: a location the platform reads itself (connected
        with ``POST /datasets``, not checked here).
    :param task: which columns every row needs: ``sft`` (prompt, completion),
        ``continued_pretraining`` (text), ``grpo`` (prompt), ``classification`` (text,
        label), ``batch`` (custom_id, body, with unique custom_ids), or None to skip the
        column check.
    :param if_exists: when the name holds other content: ``reuse`` fails; ``version`` uses
        the newest of ``<name>``, ``<name>-v2``, ... that holds this content, or uploads it
        as the next version. The name actually used is returned.
    :param description: free text; the fingerprint marker is appended to it.
    See :class:`PredibaseBaseOperator` for the connection, waiting and timeout parameters.
    """

    template_fields: Sequence[str] = ("name", "file", "source", "description", "task", "if_exists")
    kind = DATASET
    _lineage: DatasetFacts | None = None

    def __init__(
        self,
        *,
        name: str,
        file: Any = None,
        source: str | None = None,
        task: str | None = "sft",
        if_exists: str = "reuse",
        description: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if (file is None) == (source is None):
            raise ValueError("CreateDatasetOperator needs exactly one of file= or source=")
        check_name("name", name)
        check_choice("task", task, (*TASKS, None))
        check_choice("if_exists", if_exists, IF_EXISTS, _IF_EXISTS_HINT)
        if isinstance(file, str) and not is_templated(file):
            file_format(file)
        self.name = name
        self.file = file
        self.source = source
        self.task = task
        self.if_exists = if_exists
        self.description = description

    def _payload(self) -> _Payload:
        """Every check that needs no request, on the rendered fields."""
        try:
            check_name("name", self.name)
            check_choice("task", self.task, (*TASKS, None))
            check_choice("if_exists", self.if_exists, IF_EXISTS, _IF_EXISTS_HINT)
            if self.file is None:
                source = str(self.source)
                return _Payload(fingerprint(source.encode()), source=source)
            checked = read_dataset_file(self.file, self.task, self.log)
        except ValueError as error:
            raise PredibaseInvalidParameter(
                f"CreateDatasetOperator {self.task_id}: {error}"
            ) from None
        except OSError as error:
            raise AirflowException(f"cannot read dataset file {self.file}: {error}") from error
        rows = "unknown" if checked.rows is None else checked.rows
        self.log.info(
            "%s: %s, %d bytes, %s rows", self.file, checked.format, len(checked.content), rows
        )
        return _Payload(fingerprint(checked.content), file=checked)

    @fail_fast_on_rejection
    def execute(self, context: Any) -> Any:
        payload = self._payload()
        client = self.client
        if self.if_exists == "version":
            dataset = self._versioned(client, str(self.name), payload)
        else:
            dataset = self._reused_or_created(client, str(self.name), payload)
        self._publish(context, self.kind, dataset.name)
        event = self._wait(dataset, dataset.name, self._deadline())
        return self._finish(context, event)

    # -- which dataset -------------------------------------------------------------------

    def _reused_or_created(self, client: PredibaseClient, name: str, payload: _Payload) -> Dataset:
        existing = _get(client, name)
        if existing is None:
            dataset, ours = self._create(client, name, payload)
            if ours:
                return dataset
            existing = dataset
        if fingerprint_of(existing) != payload.fingerprint:
            self._fail_conflict(existing, payload)
        if existing.status.is_failure:
            self._fail_errored(existing)
        self.log.info("dataset %s already holds this content: reusing it", name)
        return existing

    def _versioned(self, client: PredibaseClient, base: str, payload: _Payload) -> Dataset:
        family = sorted(
            ((v, d) for d in client.list_datasets() if (v := version_of(d.name, base)) is not None),
            key=lambda pair: pair[0],
        )
        for _, dataset in reversed(family):
            if fingerprint_of(dataset) == payload.fingerprint and not dataset.status.is_failure:
                self.log.info("dataset %s already holds this content: reusing it", dataset.name)
                return dataset
        version = family[-1][0] + 1 if family else 1
        while True:  # another task may take the next name first
            name = base if version == 1 else f"{base}-v{version}"
            dataset, ours = self._create(client, name, payload)
            if ours:
                return dataset
            self.log.info("dataset %s was taken meanwhile: trying the next version", name)
            version += 1

    def _create(
        self, client: PredibaseClient, name: str, payload: _Payload
    ) -> tuple[Dataset, bool]:
        """Create `name` with `payload`: (the dataset, True), or (what holds the name, False)
        if other content took it first.

        When the outcome is unclear (a lost response, a retried step answered 404 or 409)
        the name is looked up: if it holds this content, this request created it.
        """
        try:
            return self._send(client, name, payload), True
        except (ConflictError, NotFoundError, OutcomeUnknownError) as error:
            existing = _get(client, name)
            if existing is not None:
                ours = fingerprint_of(existing) == payload.fingerprint
                if ours:
                    self.log.info("dataset %s was created after all (%s)", name, error)
                return existing, ours
            if not isinstance(error, OutcomeUnknownError):
                raise
            self.log.warning("dataset %s was not created (%s): sending again", name, error)
            return self._send(client, name, payload), True

    def _send(self, client: PredibaseClient, name: str, payload: _Payload) -> Dataset:
        from airflow_predibase.client.models import DatasetRequest

        marker = f"[sha256:{payload.fingerprint}]"
        description = f"{self.description} {marker}" if self.description else marker
        if payload.file is None:
            self.log.info("connecting dataset %s from %s", name, payload.source)
            request = DatasetRequest(name=name, source=payload.source, description=description)
            return client.create_dataset(request)
        self.log.info("uploading %s as dataset %s", payload.file.file_name, name)
        file = payload.file
        return client.upload_dataset(name, file.content, file.file_name, description=description)

    # -- failures and the end ------------------------------------------------------------

    def _fail_conflict(self, existing: Dataset, payload: _Payload) -> NoReturn:
        theirs = fingerprint_of(existing)
        if theirs:
            what = f"other content (sha256 {theirs}, this one {payload.fingerprint})"
        else:
            what = (
                "content of unknown origin (no [sha256:...] marker in its description: it was "
                "not created by CreateDatasetOperator"
                + (
                    ", or the platform does not show descriptions back; see docs/platform.md)"
                    if existing.description is None
                    else ")"
                )
            )
        raise PredibaseInvalidParameter(
            f"CreateDatasetOperator {self.task_id}: dataset {existing.name!r} already exists "
            f"with {what}. Predibase cannot delete or overwrite a dataset: choose another "
            "name, or set if_exists='version' to upload it as the next <name>-vN"
        )

    def _fail_errored(self, existing: Dataset) -> NoReturn:
        # Not retried: the same bytes under the same name fail the same way every time.
        raise PredibaseInvalidParameter(
            f"dataset {existing.name!r} already holds this content but errored: "
            f"{existing.last_error or 'no reason given'}. Predibase cannot delete it: fix the "
            "file and use another name, or set if_exists='version'"
        )

    def _on_success(self, context: Any, event: JobEvent) -> str:
        from airflow_predibase.client.models import Dataset
        from airflow_predibase.lineage import DatasetFacts

        dataset = Dataset.model_validate(event.resource or {"name": event.resource_id})
        required = task_columns(self.task)
        if dataset.columns is not None:
            missing = [c for c in required if c not in dataset.columns]
            if missing:
                raise PredibaseInvalidParameter(
                    f"dataset {dataset.name!r} connected without column(s) "
                    f"{', '.join(missing)} needed for task {self.task!r}; it has: "
                    f"{', '.join(dataset.columns)}"
                )
        self.log.info(
            "dataset %s is connected (%s rows; columns %s)",
            dataset.name,
            dataset.row_count,
            dataset.columns,
        )
        source = self.file if self.file is not None else self.source
        self._lineage = DatasetFacts.of(dataset, source, fingerprint_of(dataset))
        return dataset.name

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        """OpenLineage: the file (or source) and its fingerprint -> the Predibase dataset
        (docs/lineage.md)."""
        from airflow_predibase.lineage import build

        return build(self._lineage, self.hook.get_settings)


def _get(client: PredibaseClient, name: str) -> Dataset | None:
    try:
        return client.get_dataset(name)
    except NotFoundError:
        return None
