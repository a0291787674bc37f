"""Dataset files as the platform reads them: formats, the size limit, readers, column rules.

The one definition behind the operator's pre-upload check, the emulator, the client's
upload and the evaluation helpers, so a file one of them accepts the others accept. No
Airflow and no I/O: bytes in, rows out. Parquet needs pyarrow, imported only when a Parquet
file is read.

Errors are `DatasetFileError` (a ValueError) naming the file (`where`), the line or row, and
what would be accepted instead.
"""

from __future__ import annotations

import csv
import importlib.util
import io
import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

Row = dict[str, Any]

#: The formats the platform reads.
FORMATS = ("csv", "jsonl", "json", "parquet")
#: The format each file extension means (lower case). ``.ndjson`` is JSONL by another name.
EXTENSIONS = {
    ".csv": "csv",
    ".jsonl": "jsonl",
    ".json": "json",
    ".parquet": "parquet",
    ".ndjson": "jsonl",
}
#: The format each MIME type means; used when the file name has no known extension.
MIME_TYPES = {
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
#: The MIME type an upload declares for each format.
UPLOAD_MIME_TYPES = {
    "csv": "text/csv",
    "jsonl": "application/jsonl",
    "json": "application/json",
    "parquet": "application/vnd.apache.parquet",
}
#: The platform's limit per file.
MAX_FILE_BYTES = 100 * 1024 * 1024

#: Columns every row needs for each fine-tuning task (API_NOTES: "Fine-tuning datasets").
TASK_COLUMNS: dict[str, tuple[str, ...]] = {
    "sft": ("prompt", "completion"),
    "continued_pretraining": ("text",),
    "grpo": ("prompt",),
    "classification": ("text", "label"),
}
#: Columns of a batch inference input (OpenAI batch format), checked for task ``batch``.
BATCH_COLUMNS = ("custom_id", "body")
#: The optional column that holds rows out of training, and its values. Blank means train.
SPLIT_COLUMN = "split"
SPLITS = ("train", "evaluation")
_SAMPLE = 5


class DatasetFileError(ValueError):
    """What is wrong with a dataset file: the file, the line or row, and what is valid."""


@dataclass
class Table:
    """A dataset's rows and columns (columns in first-seen order)."""

    format: str
    columns: list[str]
    rows: list[Row] = field(repr=False)


# -- formats and size ----------------------------------------------------------------------


def detect_format(file_name: str, mime_type: str | None = None) -> str | None:
    """The format a file name's extension (or else its MIME type) says, or None."""
    lowered = file_name.lower()
    for extension, fmt in EXTENSIONS.items():
        if lowered.endswith(extension):
            return fmt
    if mime_type:
        return MIME_TYPES.get(mime_type.split(";")[0].strip().lower())
    return None


def file_format(file_name: str) -> str:
    """The format of `file_name` by its extension; DatasetFileError naming the valid ones."""
    fmt = detect_format(file_name)
    if fmt is None:
        raise DatasetFileError(
            f"cannot upload {file_name!r}: the file name must end in one of {', '.join(EXTENSIONS)}"
        )
    return fmt


def size_limit(limit: int = MAX_FILE_BYTES) -> str:
    """`limit` for people: ``100 MB``."""
    return f"{limit / (1024 * 1024):g} MB"


def check_size(size: int, where: str, limit: int = MAX_FILE_BYTES) -> None:
    """DatasetFileError if a file of `size` bytes is over the platform's limit."""
    if size > limit:
        raise DatasetFileError(
            f"{where} is {size} bytes; Predibase takes files up to {size_limit(limit)}"
        )


def task_columns(task: str | None) -> tuple[str, ...]:
    """The columns every row needs for `task` (``batch`` or a fine-tuning task; None: none)."""
    if task is None:
        return ()
    return BATCH_COLUMNS if task == "batch" else TASK_COLUMNS[task]


def split_of(row: Row) -> str:
    """The row's split as written, ``train`` when the column is absent or blank."""
    value = row.get(SPLIT_COLUMN)
    return "train" if value is None or value == "" else str(value)


def is_training_row(row: Row) -> bool:
    """Whether training learns from `row`: all rows but those whose split is evaluation."""
    return split_of(row) != "evaluation"


# -- readers -------------------------------------------------------------------------------


def decode(content: bytes, where: str) -> str:
    """UTF-8 text (a byte-order mark is dropped)."""
    try:
        return content.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise DatasetFileError(f"{where} is not UTF-8 text (byte {error.start})") from None


def json_lines(text: str, where: str) -> Iterator[tuple[int, Row]]:
    """(line number, object) for each non-blank line of JSONL text; a bad line raises."""
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as error:
            raise DatasetFileError(
                f"{where} line {number} is not JSON: {error.msg} at column {error.colno}"
            ) from None
        if not isinstance(value, dict):
            raise DatasetFileError(f"{where} line {number} is not a JSON object")
        yield number, value


def _csv_rows(content: bytes, where: str) -> Iterator[Row]:
    reader = csv.DictReader(io.StringIO(decode(content, where)))
    try:
        if not reader.fieldnames:
            raise DatasetFileError(f"{where} has no header row: its first line is blank")
        yield from reader
    except csv.Error as error:
        raise DatasetFileError(
            f"{where} line {reader.line_num} is not valid CSV: {error}"
        ) from None


def _jsonl_rows(content: bytes, where: str) -> Iterator[Row]:
    for _, row in json_lines(decode(content, where), where):
        yield row


def _json_rows(content: bytes, where: str) -> list[Row]:
    try:
        document = json.loads(decode(content, where))
    except json.JSONDecodeError as error:
        raise DatasetFileError(
            f"{where} is not JSON: {error.msg} at line {error.lineno}, column {error.colno}"
        ) from None
    if isinstance(document, dict) and isinstance(document.get("data"), list):
        document = document["data"]
    if isinstance(document, dict) and all(isinstance(v, list) for v in document.values()):
        # Column-oriented, as pandas writes with orient="list".
        names = list(document)
        length = len(document[names[0]]) if names else 0
        if any(len(document[name]) != length for name in names):
            raise DatasetFileError(f"{where} has JSON columns of different lengths")
        return [{name: document[name][i] for name in names} for i in range(length)]
    if isinstance(document, list) and all(isinstance(row, dict) for row in document):
        return document
    raise DatasetFileError(
        f"{where} must hold a JSON array of objects (one per row) or a JSON object of "
        "columns (equally long arrays)"
    )


def can_read_parquet() -> bool:
    """Whether pyarrow, which reads Parquet, is installed here."""
    return importlib.util.find_spec("pyarrow") is not None


def looks_like_parquet(content: bytes) -> bool:
    """Whether `content` starts and ends with Parquet's magic bytes."""
    return len(content) >= 8 and content[:4] == b"PAR1" and content[-4:] == b"PAR1"


def _parquet_rows(content: bytes, where: str) -> list[Row]:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise DatasetFileError(
            f"cannot read {where}: reading Parquet needs pyarrow, which is not installed "
            "here (pip install pyarrow); or use CSV or JSONL"
        ) from None
    try:
        table = pq.read_table(io.BytesIO(content))
    except Exception as error:  # pyarrow raises several unrelated types for a bad file
        raise DatasetFileError(f"{where} is not a readable Parquet file: {error}") from None
    rows: list[Row] = table.to_pylist()
    return rows


_READERS: dict[str, Callable[[bytes, str], Iterable[Row]]] = {
    "csv": _csv_rows,
    "jsonl": _jsonl_rows,
    "json": _json_rows,
    "parquet": _parquet_rows,
}


def iter_rows(content: bytes, fmt: str, where: str) -> Iterator[Row]:
    """The rows of a file in `fmt`, CSV and JSONL lazily. DatasetFileError, naming `where` and
    the line, when the file is empty or does not parse (or is Parquet and pyarrow is not
    installed)."""
    if not content.strip():
        raise DatasetFileError(f"{where} is empty: it holds no rows")
    yield from _READERS[fmt](content, where)


# -- the rules every file follows --------------------------------------------------------


@dataclass
class _Tally:
    """What `check_rows` found, row by row."""

    count: int = 0
    training: int = 0
    columns: dict[str, None] = field(default_factory=dict)
    lacking: dict[str, list[int]] = field(default_factory=dict)
    bad_splits: list[str] = field(default_factory=list)
    ids: set[str] = field(default_factory=set)
    bad_ids: list[str] = field(default_factory=list)

    def add(self, number: int, row: Row, columns: Sequence[str], task: str | None) -> None:
        self.count = number
        self.columns.update(dict.fromkeys(str(k) for k in row if k is not None))
        for column in columns:
            if column not in row:
                self.lacking.setdefault(column, []).append(number)
        split = split_of(row)
        if split not in SPLITS:
            self.bad_splits.append(f"row {number}: {row[SPLIT_COLUMN]!r}")
        self.training += split != "evaluation"
        if task == "batch" and "custom_id" in row:
            custom_id = row["custom_id"]
            if not isinstance(custom_id, str) or not custom_id or custom_id in self.ids:
                self.bad_ids.append(f"row {number}: {custom_id!r}")
            self.ids.add(str(custom_id))


def check_rows(
    rows: Iterable[Row], where: str, task: str | None = None, columns: Sequence[str] | None = None
) -> int:
    """The number of rows. DatasetFileError if there are none; if a `split` is neither train
    nor evaluation; if a row lacks one of `columns` (default: those `task` needs); if a
    fine-tuning file has no training row; or (task ``batch``) if a ``custom_id`` is empty or
    repeated."""
    needed = task_columns(task) if columns is None else tuple(columns)
    tally = _Tally()
    for number, row in enumerate(rows, start=1):
        tally.add(number, row, needed, task)
    if tally.count == 0:
        raise DatasetFileError(f"{where} holds no rows")
    if tally.bad_splits:
        raise DatasetFileError(
            f"{where}: column {SPLIT_COLUMN!r} must be one of {', '.join(SPLITS)} (blank "
            f"means train); {len(tally.bad_splits)} rows are not: "
            f"{', '.join(tally.bad_splits[:_SAMPLE])}"
        )
    if tally.lacking:
        details = "; ".join(
            f"{column!r} missing in {len(numbers)} of {tally.count} rows (first: row {numbers[0]})"
            for column, numbers in tally.lacking.items()
        )
        found = ", ".join(list(tally.columns)[:20]) or "none"
        raise DatasetFileError(
            f"{where} lacks column(s) {', '.join(tally.lacking)} needed for task {task!r}: "
            f"{details}. Columns found: {found}"
        )
    if task in TASK_COLUMNS and tally.training == 0:
        raise DatasetFileError(
            f"{where} has no training rows: every row's {SPLIT_COLUMN!r} is evaluation, and "
            f"task {task!r} trains on the rows whose split is train or blank"
        )
    if tally.bad_ids:
        raise DatasetFileError(
            f"{where}: each row needs a unique, non-empty custom_id (results are matched on "
            f"it); {len(tally.bad_ids)} do not: {', '.join(tally.bad_ids[:_SAMPLE])}"
        )
    return tally.count


def read_table(content: bytes, fmt: str, where: str) -> Table:
    """All rows of a file that reads and follows the rules every file follows (see
    `check_rows` without a task)."""
    rows = list(iter_rows(content, fmt, where))
    check_rows(rows, where)
    columns: dict[str, None] = {}
    for row in rows:
        columns.update(dict.fromkeys(k for k in row if k is not None))
    return Table(fmt, list(columns), rows)
