"""Dataset files: read from a local path or object storage, and checked before upload.

Format by extension, the platform's size limit, parseability, and that every row has the
columns the intended task needs. Errors are ValueError naming the file, the row and the
missing columns.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

#: Formats the platform reads, by file extension.
FORMATS = {".csv": "csv", ".jsonl": "jsonl", ".json": "json", ".parquet": "parquet"}
#: The platform's limit per file.
MAX_FILE_BYTES = 100 * 1024 * 1024
#: Columns of a batch inference input (OpenAI batch format).
BATCH_COLUMNS = ("custom_id", "body")
_SAMPLE = 5


def task_columns(task: str | None) -> tuple[str, ...]:
    """The columns every row needs for `task` (None: no check)."""
    from airflow_predibase.client.models import TASK_COLUMNS

    if task is None:
        return ()
    return BATCH_COLUMNS if task == "batch" else TASK_COLUMNS[task]


def file_format(file_name: str) -> str:
    """csv, jsonl, json or parquet, from the extension; ValueError naming the valid ones."""
    for extension, fmt in FORMATS.items():
        if file_name.lower().endswith(extension):
            return fmt
    raise ValueError(
        f"cannot upload {file_name!r}: the file name must end in one of {', '.join(FORMATS)}"
    )


def fingerprint(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:16]


def storage_path(location: Any) -> Any:
    """A readable/writable path: local, ``file://``, or any scheme Airflow's object
    storage has a filesystem for (``s3://`` with the Amazon provider, ...)."""
    if hasattr(location, "read_bytes") and not isinstance(location, str):
        return location  # already a Path or an ObjectStoragePath
    from airflow.providers.common.compat.sdk import ObjectStoragePath

    path = ObjectStoragePath(str(location))
    try:
        path.fs  # noqa: B018  (resolves the filesystem: fails for an unknown scheme)
    except ValueError as error:
        raise ValueError(
            f"cannot open {location}: {error} (install the Airflow provider for that "
            "storage, e.g. apache-airflow-providers-amazon[s3fs] for s3://)"
        ) from None
    return path


# -- reading and checking a file ----------------------------------------------------------


def _text(content: bytes, where: str) -> str:
    try:
        return content.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise ValueError(f"{where} is not UTF-8 text (byte {error.start})") from None


def _csv_records(content: bytes, where: str) -> Iterator[dict[str, Any]]:
    reader = csv.DictReader(io.StringIO(_text(content, where)))
    try:
        yield from reader
    except csv.Error as error:
        raise ValueError(f"{where} line {reader.line_num} is not valid CSV: {error}") from None


def _jsonl_records(content: bytes, where: str) -> Iterator[dict[str, Any]]:
    for number, line in enumerate(_text(content, where).splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError as error:
            raise ValueError(f"{where} line {number} is not JSON: {error}") from None
        if not isinstance(record, dict):
            raise ValueError(f"{where} line {number} is not a JSON object")
        yield record


def _json_records(content: bytes, where: str) -> list[dict[str, Any]]:
    try:
        document = json.loads(_text(content, where))
    except ValueError as error:
        raise ValueError(f"{where} is not JSON: {error}") from None
    if not isinstance(document, list) or not all(isinstance(r, dict) for r in document):
        raise ValueError(f"{where} must hold a JSON array of objects, one per row")
    return document


def _parquet_records(content: bytes, where: str) -> list[dict[str, Any]] | None:
    try:
        import pyarrow.parquet as pq  # type: ignore[import-not-found, unused-ignore]
    except ImportError:
        if not (content[:4] == b"PAR1" and content[-4:] == b"PAR1"):
            raise ValueError(f"{where} is not a Parquet file") from None
        return None
    try:
        table = pq.read_table(io.BytesIO(content))
    except Exception as error:  # pyarrow raises several unrelated types for a bad file
        raise ValueError(f"{where} is not a readable Parquet file: {error}") from None
    records: list[dict[str, Any]] = table.to_pylist()
    return records


def iter_records(content: bytes, fmt: str, where: str) -> Iterable[dict[str, Any]] | None:
    """The rows of a dataset file, or None if they cannot be read here (Parquet without
    pyarrow). ValueError, naming `where` and the line, when the file does not parse."""
    if fmt == "csv":
        return _csv_records(content, where)
    if fmt == "jsonl":
        return _jsonl_records(content, where)
    if fmt == "json":
        return _json_records(content, where)
    return _parquet_records(content, where)


def check_records(
    records: Iterable[dict[str, Any]], columns: Sequence[str], where: str, task: str | None
) -> int:
    """The number of rows; ValueError if there are none, if a row lacks one of `columns`,
    or (task ``batch``) if a ``custom_id`` is empty or repeated."""
    count = 0
    lacking: dict[str, list[int]] = {}
    seen_columns: dict[str, None] = {}
    ids: set[str] = set()
    bad_ids: list[str] = []
    for number, record in enumerate(records, start=1):
        count = number
        seen_columns.update(dict.fromkeys(str(k) for k in record))
        for column in columns:
            if column not in record:
                lacking.setdefault(column, []).append(number)
        if task == "batch" and "custom_id" in record:
            custom_id = record["custom_id"]
            if not isinstance(custom_id, str) or not custom_id or custom_id in ids:
                bad_ids.append(f"row {number}: {custom_id!r}")
            ids.add(str(custom_id))
    if count == 0:
        raise ValueError(f"{where} holds no rows")
    if lacking:
        details = "; ".join(
            f"{column!r} missing in {len(rows)} of {count} rows (first: row {rows[0]})"
            for column, rows in lacking.items()
        )
        found = ", ".join(list(seen_columns)[:20]) or "none"
        raise ValueError(
            f"{where} lacks column(s) {', '.join(lacking)} needed for task {task!r}: "
            f"{details}. Columns found: {found}"
        )
    if bad_ids:
        raise ValueError(
            f"{where}: each row needs a unique, non-empty custom_id (results are matched on "
            f"it); {len(bad_ids)} do not: {', '.join(bad_ids[:_SAMPLE])}"
        )
    return count


@dataclass(frozen=True)
class DatasetFile:
    """A checked file, ready to upload."""

    file_name: str
    format: str
    content: bytes
    rows: int | None  # None when it could not be read here (Parquet without pyarrow)


def read_dataset_file(location: Any, task: str | None, log: Any) -> DatasetFile:
    """Read and check a dataset file. ValueError says what is wrong with it; OSError means
    it could not be read at all."""
    path = storage_path(location)
    where = str(location)
    fmt = file_format(path.name)
    limit = f"{MAX_FILE_BYTES / (1024 * 1024):g} MB"
    size = path.stat().st_size
    if size > MAX_FILE_BYTES:
        raise ValueError(f"{where} is {size} bytes; Predibase takes files up to {limit}")
    content = path.read_bytes()
    if len(content) > MAX_FILE_BYTES:  # the size an object store reported may be stale
        raise ValueError(f"{where} is {len(content)} bytes; Predibase takes files up to {limit}")
    records = iter_records(content, fmt, where)
    if records is None:
        log.warning("pyarrow is not installed: the columns of %s were not checked", where)
        return DatasetFile(path.name, fmt, content, None)
    rows = check_records(records, task_columns(task), where, task)
    return DatasetFile(path.name, fmt, content, rows)
