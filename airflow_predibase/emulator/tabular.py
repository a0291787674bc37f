"""Reading dataset files into rows, as the platform would: `airflow_predibase.dataset_files`
under the names the emulator's resources use.

A file that cannot be read is not an HTTP error: the dataset is created and later ends
`errored` with the reason in `lastError`, which is what `TableError` carries.
"""

from __future__ import annotations

from typing import Any

from airflow_predibase import dataset_files
from airflow_predibase.dataset_files import FORMATS, Table, detect_format

__all__ = ["FORMATS", "Table", "TableError", "detect_format", "read_table", "train_rows"]

#: Why a file could not be read as a dataset.
TableError = dataset_files.DatasetFileError

# The platform does not know the file's name once it is stored; its errors name the format.
_NAMES = {"csv": "CSV", "jsonl": "JSONL", "json": "JSON", "parquet": "Parquet"}


def read_table(data: bytes, fmt: str) -> Table:
    """Parse `data` as `fmt`; TableError with a reason a user can act on."""
    return dataset_files.read_table(data, fmt, f"{_NAMES[fmt]} file")


def train_rows(table: Table) -> list[dict[str, Any]]:
    """The rows training learns from: all but those whose `split` is `evaluation`."""
    return [row for row in table.rows if dataset_files.is_training_row(row)]
