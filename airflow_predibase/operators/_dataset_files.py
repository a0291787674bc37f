"""Dataset files on the worker: read from a local path or object storage, and checked
before upload by the rules in `airflow_predibase.dataset_files`.

Errors are ValueError (`DatasetFileError`) naming the file, the row and what is wrong.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from airflow_predibase.dataset_files import (
    MAX_FILE_BYTES,
    DatasetFileError,
    can_read_parquet,
    check_rows,
    check_size,
    file_format,
    iter_rows,
    looks_like_parquet,
    task_columns,
)

__all__ = [
    "MAX_FILE_BYTES",
    "DatasetFile",
    "check_records",
    "file_format",
    "fingerprint",
    "iter_records",
    "read_dataset_file",
    "storage_path",
    "task_columns",
]


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


def iter_records(content: bytes, fmt: str, where: str) -> Iterable[dict[str, Any]] | None:
    """The rows of a dataset file, or None if they cannot be read here (Parquet without
    pyarrow, once its magic bytes are checked). ValueError, naming `where` and the line,
    when the file does not parse."""
    if fmt == "parquet" and not can_read_parquet():
        if not looks_like_parquet(content):
            raise DatasetFileError(f"{where} is not a Parquet file (no PAR1 magic bytes)")
        return None
    return iter_rows(content, fmt, where)


def check_records(
    records: Iterable[dict[str, Any]], columns: Sequence[str], where: str, task: str | None
) -> int:
    """The number of rows; ValueError as `dataset_files.check_rows` says, with `columns`
    as the columns every row needs."""
    return check_rows(records, where, task, columns)


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
    check_size(path.stat().st_size, where)
    content = path.read_bytes()
    check_size(len(content), where)  # the size an object store reported may be stale
    records = iter_records(content, fmt, where)
    if records is None:
        log.warning("pyarrow is not installed: the columns of %s were not checked", where)
        return DatasetFile(path.name, fmt, content, None)
    rows = check_rows(records, where, task)
    return DatasetFile(path.name, fmt, content, rows)
