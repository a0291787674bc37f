"""Reading dataset files (CSV, JSONL, JSON, Parquet) into rows, as the platform would.

A file that cannot be read is not an HTTP error: the dataset is created and later ends
`errored` with the reason in `lastError`, which is what `TableError` carries.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from typing import Any

FORMATS = ("csv", "jsonl", "json", "parquet")

_EXTENSIONS = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "json"}
_EXTENSIONS[".parquet"] = "parquet"
_MIME_TYPES = {
    "text/csv": "csv",
    "application/csv": "csv",
    "application/jsonl": "jsonl",
    "application/x-jsonlines": "jsonl",
    "application/jsonlines": "jsonl",
    "application/x-ndjson": "jsonl",
    "application/json": "json",
    "application/vnd.apache.parquet": "parquet",
    "application/x-parquet": "parquet",
    "application/parquet": "parquet",
}


class TableError(ValueError):
    """Why a file could not be read as a dataset."""


@dataclass
class Table:
    """A dataset's rows and columns (columns in first-seen order)."""

    format: str
    columns: list[str]
    rows: list[dict[str, Any]] = field(repr=False)


def detect_format(file_name: str, mime_type: str | None = None) -> str | None:
    """The format a file name's extension (or else its MIME type) says, or None."""
    lowered = file_name.lower()
    for extension, fmt in _EXTENSIONS.items():
        if lowered.endswith(extension):
            return fmt
    if mime_type:
        return _MIME_TYPES.get(mime_type.split(";")[0].strip().lower())
    return None


def _text(data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise TableError(f"file is not UTF-8 text (byte {exc.start})") from None


def _columns(rows: list[dict[str, Any]]) -> list[str]:
    seen: dict[str, None] = {}
    for row in rows:
        seen.update(dict.fromkeys(row))
    return list(seen)


def _read_csv(data: bytes) -> Table:
    reader = csv.DictReader(io.StringIO(_text(data)))
    if not reader.fieldnames:
        raise TableError("CSV file has no header row")
    try:
        rows = [dict(row) for row in reader]
    except csv.Error as exc:
        raise TableError(f"CSV line {reader.line_num}: {exc}") from None
    return Table("csv", [str(name) for name in reader.fieldnames], rows)


def _read_jsonl(data: bytes) -> Table:
    rows: list[dict[str, Any]] = []
    for number, line in enumerate(_text(data).splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError as exc:
            raise TableError(f"JSONL line {number} is not JSON: {exc}") from None
        if not isinstance(row, dict):
            raise TableError(f"JSONL line {number} is not a JSON object")
        rows.append(row)
    return Table("jsonl", _columns(rows), rows)


def _read_json(data: bytes) -> Table:
    try:
        document = json.loads(_text(data))
    except ValueError as exc:
        raise TableError(f"file is not JSON: {exc}") from None
    if isinstance(document, dict) and isinstance(document.get("data"), list):
        document = document["data"]
    if isinstance(document, dict) and all(isinstance(v, list) for v in document.values()):
        # Column-oriented, as pandas writes with orient="list".
        names = list(document)
        length = len(document[names[0]]) if names else 0
        if any(len(document[name]) != length for name in names):
            raise TableError("JSON columns have different lengths")
        rows = [{name: document[name][i] for name in names} for i in range(length)]
        return Table("json", names, rows)
    if isinstance(document, list) and all(isinstance(row, dict) for row in document):
        return Table("json", _columns(document), document)
    raise TableError("JSON file must hold an array of objects or an object of columns")


def _read_parquet(data: bytes) -> Table:
    try:
        import pyarrow.parquet as pq  # type: ignore[import-not-found, unused-ignore]
    except ImportError:
        raise TableError(
            "cannot read Parquet: pyarrow is not installed where the emulator runs "
            "(pip install pyarrow), or upload CSV/JSONL instead"
        ) from None
    try:
        table = pq.read_table(io.BytesIO(data))
    except Exception as exc:  # pyarrow raises several unrelated types for a bad file
        raise TableError(f"file is not Parquet: {exc}") from None
    rows = [dict(row) for row in table.to_pylist()]
    return Table("parquet", [str(name) for name in table.column_names], rows)


_READERS = {"csv": _read_csv, "jsonl": _read_jsonl, "json": _read_json, "parquet": _read_parquet}


def read_table(data: bytes, fmt: str) -> Table:
    """Parse `data` as `fmt`; TableError with a reason a user can act on."""
    if not data.strip():
        raise TableError("file is empty")
    table = _READERS[fmt](data)
    if not table.rows:
        raise TableError("file holds no rows")
    return table


def train_rows(table: Table) -> list[dict[str, Any]]:
    """The rows training learns from: all but those whose `split` is `evaluation`."""
    return [row for row in table.rows if str(row.get("split") or "train") != "evaluation"]
