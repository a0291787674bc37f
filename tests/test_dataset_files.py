"""One definition of dataset files, seen from both ends.

A file the operator's pre-upload check accepts, the emulator (standing in for the platform)
reads as the same rows, and a file one rejects the other rejects for the same reason. Every
format, extension and MIME type is walked. The emulator is driven through the real client
over `httpx.ASGITransport`, on a manual clock.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import re
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from airflow_predibase.client import AsyncPredibaseClient, ClientSettings
from airflow_predibase.client._operations import upload_mime_type
from airflow_predibase.client.errors import BadRequestError
from airflow_predibase.client.models import (
    Dataset,
    DatasetRequest,
    FinetuningJobRequest,
    RepoRequest,
)
from airflow_predibase.dataset_files import (
    EXTENSIONS,
    FORMATS,
    MAX_FILE_BYTES,
    MIME_TYPES,
    DatasetFileError,
)
from airflow_predibase.emulator.config import EmulatorConfig
from airflow_predibase.emulator.in_process import InProcessEmulator
from airflow_predibase.emulator.tabular import TableError, detect_format, read_table, train_rows
from airflow_predibase.evaluation import read_jsonl
from airflow_predibase.operators._dataset_files import iter_records, read_dataset_file

LOG = logging.getLogger(__name__)
ROWS = [
    {"prompt": "colour of the sky", "completion": "blue", "split": "train"},
    {"prompt": "colour of grass", "completion": "green", "split": ""},
    {"prompt": "colour of snow", "completion": "white", "split": "evaluation"},
]
#: The emulator names a file by its format in `lastError`; the operator by its path.
EMULATOR_NAMES = {"csv": "CSV file", "jsonl": "JSONL file", "json": "JSON file"}


# -- files -----------------------------------------------------------------------------------

Build = Callable[[list[dict[str, Any]]], bytes]


def as_csv(rows: list[dict[str, Any]]) -> bytes:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue().encode()


def as_jsonl(rows: list[dict[str, Any]]) -> bytes:
    return "".join(json.dumps(row) + "\n" for row in rows).encode()


def as_json_rows(rows: list[dict[str, Any]]) -> bytes:
    return json.dumps(rows).encode()


def as_json_columns(rows: list[dict[str, Any]]) -> bytes:
    return json.dumps({name: [row[name] for row in rows] for name in rows[0]}).encode()


def as_json_data(rows: list[dict[str, Any]]) -> bytes:
    return json.dumps({"data": rows}).encode()


def as_parquet(rows: list[dict[str, Any]]) -> bytes:
    import pyarrow as pa  # a dev dependency; imported here so that the no-pyarrow test can hide it
    import pyarrow.parquet as pq

    sink = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(rows), sink)
    return sink.getvalue()


#: (file name, how to build it): every extension, and each layout a format accepts.
FILES: list[tuple[str, Build]] = [
    ("t.csv", as_csv),
    ("t.jsonl", as_jsonl),
    ("T.NDJSON", as_jsonl),
    ("rows.json", as_json_rows),
    ("columns.json", as_json_columns),
    ("wrapped.json", as_json_data),
    ("t.parquet", as_parquet),
]
#: One way to build each format, for files named by MIME type alone.
BY_FORMAT: dict[str, Build] = {
    "csv": as_csv,
    "jsonl": as_jsonl,
    "json": as_json_rows,
    "parquet": as_parquet,
}


def write(tmp_path: Path, file_name: str, content: bytes) -> Path:
    path = tmp_path / file_name
    path.write_bytes(content)
    return path


def extension_of(fmt: str) -> str:
    return next(ext for ext, known in EXTENSIONS.items() if known == fmt)


# -- the emulator, through the real client ----------------------------------------------------


class Platform:
    """The emulator in process; `settle` moves its clock past every lifecycle phase."""

    def __init__(self, emulator: InProcessEmulator, client: AsyncPredibaseClient) -> None:
        self.emulator = emulator
        self.client = client

    def settle(self) -> None:
        self.emulator.clock.advance(24 * 3600)

    async def upload(self, content: bytes, file_name: str, mime: str | None = None) -> Dataset:
        await self.client.upload_dataset("d", content, file_name, mime)
        self.settle()
        return await self.client.get_dataset("d")

    async def finetune(self, content: bytes, file_name: str, task: str) -> tuple[str, str | None]:
        """(status, error) of a fine-tuning job on `content`, once it has finished."""
        await self.upload(content, file_name)
        await self.client.create_repo(RepoRequest(name="r"))
        settings: dict[str, Any] = {"base_model": "qwen3-8b", "dataset": "d", "repo": "r"}
        settings["task"] = task
        if task == "grpo":  # production refuses GRPO without a reward function
            settings["reward_fns"] = {"functions": {"short": _short_answer}}
        request = FinetuningJobRequest.model_validate(settings)
        job = await self.client.create_finetuning_job(request)
        self.settle()
        job = await self.client.get_finetuning_job(job.id)
        return job.status.value, job.error


def _short_answer(prompt: str, completion: str, example: dict) -> float:
    return 1.0 if len(completion) < 40 else 0.0


@pytest.fixture
async def platform() -> AsyncIterator[Platform]:
    emulator = InProcessEmulator.create()
    settings = ClientSettings(token=emulator.token, base_url=emulator.control_url)
    async with emulator.async_client() as http:
        yield Platform(emulator, AsyncPredibaseClient(settings, http_client=http))


# -- the tables agree --------------------------------------------------------------------------


def test_every_extension_and_mime_type_names_a_format_both_sides_read() -> None:
    assert {Path(name).suffix.lower() for name, _ in FILES} == set(EXTENSIONS)
    assert set(EXTENSIONS.values()) == set(MIME_TYPES.values()) == set(FORMATS)
    for extension, fmt in EXTENSIONS.items():
        # The MIME type the client declares is read back as the same format.
        assert detect_format("upload", upload_mime_type(f"t{extension}")) == fmt
    assert EmulatorConfig().max_upload_bytes == MAX_FILE_BYTES


# -- accepted both ways ------------------------------------------------------------------------


@pytest.mark.parametrize(("file_name", "build"), FILES, ids=[name for name, _ in FILES])
async def test_a_file_the_operator_accepts_the_emulator_reads_as_the_same_rows(
    tmp_path: Path, platform: Platform, file_name: str, build: Build
) -> None:
    content = build(ROWS)
    checked = read_dataset_file(write(tmp_path, file_name, content), "sft", LOG)
    records = iter_records(content, checked.format, file_name)
    assert checked.rows == len(ROWS)
    assert records is not None
    assert list(records) == ROWS

    fmt = detect_format(file_name)
    assert fmt == checked.format
    table = read_table(content, fmt)
    assert table.rows == ROWS
    assert train_rows(table) == ROWS[:2]  # blank split is train

    dataset = await platform.upload(content, file_name)
    assert (dataset.status, dataset.format, dataset.row_count) == ("connected", fmt, len(ROWS))
    assert dataset.columns == ["prompt", "completion", "split"]


@pytest.mark.parametrize("mime", list(MIME_TYPES))
async def test_a_file_named_by_its_mime_type_reads_like_the_same_bytes_by_extension(
    tmp_path: Path, platform: Platform, mime: str
) -> None:
    fmt = MIME_TYPES[mime]
    content = BY_FORMAT[fmt](ROWS)
    checked = read_dataset_file(write(tmp_path, f"t{extension_of(fmt)}", content), "sft", LOG)
    dataset = await platform.upload(content, "upload", mime)
    assert (dataset.status, dataset.format, dataset.row_count) == ("connected", fmt, checked.rows)


@pytest.mark.parametrize(
    ("task", "rows"),
    [
        ("sft", ROWS),
        ("continued_pretraining", [{"text": "the sky is blue"}]),
        ("grpo", [{"prompt": "colour of the sky"}]),
    ],
)
async def test_a_file_with_the_task_columns_trains_on_both_sides(
    tmp_path: Path, platform: Platform, task: str, rows: list[dict[str, Any]]
) -> None:
    content = as_jsonl(rows)
    assert read_dataset_file(write(tmp_path, "t.jsonl", content), task, LOG).rows == len(rows)
    assert await platform.finetune(content, "t.jsonl", task) == ("completed", None)


# -- rejected both ways ------------------------------------------------------------------------

UNREADABLE = [
    pytest.param("t.jsonl", b"", r"is empty: it holds no rows", id="empty"),
    pytest.param("t.csv", b"\nprompt,completion\na,b\n", r"has no header row", id="csv-no-header"),
    pytest.param("t.csv", b"prompt,completion\n", r"holds no rows", id="csv-header-only"),
    pytest.param(
        "t.csv", "prompt,completion\né,b\n".encode("latin-1"), r"not UTF-8 text", id="latin-1"
    ),
    pytest.param(
        "t.jsonl", as_jsonl(ROWS[:1]) + b"{oops\n", r"line 2 is not JSON", id="jsonl-bad-line"
    ),
    pytest.param("t.ndjson", b"[1, 2]\n", r"line 1 is not a JSON object", id="jsonl-array"),
    pytest.param(
        "t.json",
        b'"text"',
        r"JSON array of objects \(one per row\) or a JSON object of columns",
        id="json-scalar",
    ),
    pytest.param(
        "t.json",
        b'{"prompt": ["a", "b"], "completion": ["c"]}',
        r"JSON columns of different lengths",
        id="json-ragged-columns",
    ),
    pytest.param(
        "t.jsonl",
        as_jsonl([*ROWS, {"prompt": "p", "completion": "c", "split": "test"}]),
        r"column 'split' must be one of train, evaluation \(blank means train\); "
        r"1 rows are not: row 4: 'test'",
        id="bad-split",
    ),
]


@pytest.mark.parametrize(("file_name", "content", "message"), UNREADABLE)
async def test_a_file_one_side_cannot_read_the_other_rejects_for_the_same_reason(
    tmp_path: Path, platform: Platform, file_name: str, content: bytes, message: str
) -> None:
    path = write(tmp_path, file_name, content)
    with pytest.raises(ValueError, match=message) as on_the_worker:
        read_dataset_file(path, None, LOG)

    fmt = detect_format(file_name)
    assert fmt is not None
    with pytest.raises(TableError, match=message) as in_the_emulator:
        read_table(content, fmt)
    where = EMULATOR_NAMES[fmt]
    assert str(on_the_worker.value).replace(str(path), where) == str(in_the_emulator.value)

    dataset = await platform.upload(content, file_name)
    assert (dataset.status, dataset.last_error) == ("errored", str(in_the_emulator.value))


@pytest.mark.parametrize(
    ("task", "rows", "message"),
    [
        pytest.param(
            "sft",
            [{"prompt": "p", "label": "x"}],
            r"lacks column\(s\) completion needed for task 'sft'.*Columns found: prompt, label",
            id="sft-without-completion",
        ),
        pytest.param(
            "continued_pretraining",
            [{"prompt": "p"}],
            r"lacks column\(s\) text needed for task 'continued_pretraining'",
            id="cpt-without-text",
        ),
        pytest.param(
            "grpo",
            [{"text": "t"}],
            r"lacks column\(s\) prompt needed for task 'grpo'",
            id="grpo-without-prompt",
        ),
        pytest.param(
            "sft",
            [ROWS[0], {"prompt": "only a prompt"}],
            r"'completion' missing in 1 of 2 rows \(first: row 2\)",
            id="sft-one-row-without-completion",
        ),
        pytest.param(
            "sft",
            [{**ROWS[0], "split": "evaluation"}],
            r"has no training rows: every row's 'split' is evaluation",
            id="only-evaluation-rows",
        ),
    ],
)
async def test_a_file_without_what_its_task_needs_is_rejected_by_both(
    tmp_path: Path,
    platform: Platform,
    task: str,
    rows: list[dict[str, Any]],
    message: str,
) -> None:
    content = as_jsonl(rows)
    with pytest.raises(DatasetFileError, match=message):
        read_dataset_file(write(tmp_path, "t.jsonl", content), task, LOG)
    # The platform connects the dataset (it does not know the task yet); training fails,
    # by the same rule and with the same reason.
    status, error = await platform.finetune(content, "t.jsonl", task)
    assert status == "errored"
    assert error is not None
    assert re.search(message, error), error


async def test_an_unknown_extension_is_rejected_by_both_naming_the_valid_ones(
    tmp_path: Path, platform: Platform
) -> None:
    path = write(tmp_path, "t.txt", as_jsonl(ROWS))
    with pytest.raises(ValueError, match=r"must end in one of \.csv, \.jsonl, \.json, \.parquet"):
        read_dataset_file(path, "sft", LOG)
    assert detect_format("t.txt") is None
    with pytest.raises(ValueError, match=r"cannot tell the format of 't\.txt'.*\.ndjson"):
        upload_mime_type("t.txt")
    with pytest.raises(BadRequestError, match=r"supported formats: csv, jsonl, json, parquet"):
        await platform.client.begin_dataset_upload("t.txt", "text/plain")


async def test_a_file_over_the_limit_is_rejected_by_both(
    tmp_path: Path, platform: Platform
) -> None:
    path = tmp_path / "huge.jsonl"
    with path.open("wb") as sparse:
        sparse.truncate(MAX_FILE_BYTES + 1)
    with pytest.raises(ValueError, match=r"is 104857601 bytes; Predibase takes files up to 100 MB"):
        read_dataset_file(path, "sft", LOG)

    await platform.client.create_dataset(DatasetRequest(name="d", source=str(path)))
    platform.settle()
    dataset = await platform.client.get_dataset("d")
    assert dataset.status == "errored"
    assert re.search(r"104857601 bytes.*100 MB", dataset.last_error or ""), dataset.last_error


# -- Parquet where pyarrow is missing ----------------------------------------------------------


async def test_without_pyarrow_parquet_is_checked_by_its_magic_bytes_only(
    tmp_path: Path,
    platform: Platform,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # As on a worker without pyarrow: a None entry makes both the import and find_spec fail.
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    framed = b"PAR1 not really parquet PAR1"
    with caplog.at_level(logging.WARNING):
        checked = read_dataset_file(write(tmp_path, "t.parquet", framed), "sft", LOG)
    assert checked.rows is None
    assert "columns of" in caplog.text
    assert "were not checked" in caplog.text
    with pytest.raises(ValueError, match=r"is not a Parquet file \(no PAR1 magic bytes\)"):
        read_dataset_file(write(tmp_path, "u.parquet", as_csv(ROWS)), "sft", LOG)

    # The platform has pyarrow; the emulator says what it lacks.
    dataset = await platform.upload(framed, "t.parquet")
    assert dataset.status == "errored"
    assert dataset.last_error is not None
    assert "reading Parquet needs pyarrow" in dataset.last_error


# -- the other JSONL readers -------------------------------------------------------------------


def test_read_jsonl_reads_what_the_emulator_reads_and_fails_the_same_way(tmp_path: Path) -> None:
    content = as_jsonl(ROWS)
    assert read_jsonl(write(tmp_path, "t.jsonl", content)) == read_table(content, "jsonl").rows
    bad = write(tmp_path, "bad.jsonl", content + b"{oops\n")
    with pytest.raises(ValueError, match=rf"{bad.name} line 4 is not JSON: .* at column 2"):
        read_jsonl(bad)
    assert read_jsonl(write(tmp_path, "empty.jsonl", b"")) == []
