"""CreateDatasetOperator against the emulator over real HTTP: file checks before any request,
both wait modes, reuse by content, versioning, errored datasets and lost responses."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import socket
import sys
from pathlib import Path
from typing import Any

import pytest
from airflow.providers.common.compat.sdk import AirflowException

from airflow_predibase.exceptions import PredibaseInvalidParameter, PredibaseJobFailed
from airflow_predibase.operators._dataset_files import MAX_FILE_BYTES
from airflow_predibase.operators.datasets import CreateDatasetOperator
from tests.taskkit import make_context, run_deferred

ROWS = [
    {"prompt": "ticket: refund my duplicate payment", "completion": "billing"},
    {"prompt": "ticket: my parcel never arrived", "completion": "shipping"},
    {"prompt": "ticket: the app crashes on start", "completion": "technical"},
]


def jsonl(rows: list[dict[str, Any]]) -> bytes:
    return "".join(json.dumps(r) + "\n" for r in rows).encode()


def write(tmp_path: Path, name: str, content: bytes) -> str:
    path = tmp_path / name
    path.write_bytes(content)
    return str(path)


def operator(**overrides: Any) -> CreateDatasetOperator:
    params: dict[str, Any] = {
        "task_id": "upload",
        "name": "tickets",
        "poll_interval": 0.05,
        "deferrable": False,
    }
    params.update(overrides)
    return CreateDatasetOperator(**params)


def datasets(emulator: Any) -> dict[str, dict[str, Any]]:
    return {d["name"]: d for d in emulator.admin.state()["datasets"]}


@pytest.fixture
def good_file(tmp_path: Path) -> str:
    return write(tmp_path, "tickets.jsonl", jsonl(ROWS))


@pytest.fixture
def other_file(tmp_path: Path) -> str:
    return write(tmp_path, "tickets-2.jsonl", jsonl([*ROWS, {"prompt": "hi", "completion": "x"}]))


@pytest.fixture
def unreachable(monkeypatch: pytest.MonkeyPatch) -> None:
    """predibase_default points at a closed port: any request would fail to connect."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    conn = {"conn_type": "predibase", "host": f"http://127.0.0.1:{port}/v2", "password": "pb_x"}
    conn["extra"] = {"max_retries": 0}  # type: ignore[assignment]
    monkeypatch.setenv("AIRFLOW_CONN_PREDIBASE_DEFAULT", json.dumps(conn))


# -- uploading and waiting ----------------------------------------------------------------


def test_upload_waits_until_connected_and_publishes_the_dataset(emulator: Any, good_file: str):
    context = make_context()
    assert operator(file=good_file, description="weekly tickets").execute(context) == "tickets"

    [dataset] = datasets(emulator).values()
    assert dataset["status"] == "connected"
    assert dataset["row_count"] == 3
    digest = hashlib.sha256(Path(good_file).read_bytes()).hexdigest()[:16]
    assert dataset["description"] == f"weekly tickets [sha256:{digest}]"
    url = context["ti"].xcoms["predibase_console_url"]
    assert url.endswith("/data/datasets/tickets")


def test_deferred_upload_round_trips_the_trigger(emulator: Any, good_file: str):
    assert run_deferred(operator(file=good_file, deferrable=True), make_context()) == "tickets"
    assert datasets(emulator)["tickets"]["status"] == "connected"


def test_csv_through_an_object_storage_url(emulator: Any, tmp_path: Path):
    path = write(tmp_path, "t.csv", b"prompt,completion\nhello,greeting\nbye,farewell\n")
    assert operator(file=f"file://{path}").execute(make_context()) == "tickets"
    assert datasets(emulator)["tickets"]["columns"] == ["prompt", "completion"]


def test_task_none_uploads_any_columns(emulator: Any, tmp_path: Path):
    path = write(tmp_path, "notes.json", json.dumps([{"note": "a"}, {"note": "b"}]).encode())
    assert operator(file=path, task=None).execute(make_context()) == "tickets"


def test_source_is_connected_by_the_platform(emulator: Any, good_file: str):
    assert operator(source=f"file://{good_file}").execute(make_context()) == "tickets"
    assert datasets(emulator)["tickets"]["source"] == f"file://{good_file}"


def test_source_without_the_task_columns_fails_once_connected(emulator: Any, tmp_path: Path):
    path = write(tmp_path, "prompts.jsonl", jsonl([{"prompt": "hello"}]))
    with pytest.raises(PredibaseInvalidParameter, match=r"without column\(s\) completion"):
        operator(source=path).execute(make_context())


# -- idempotency by content ----------------------------------------------------------------


def test_same_content_again_is_reused_without_an_upload(emulator: Any, good_file: str):
    operator(file=good_file).execute(make_context(run_id="week_1"))
    emulator.admin.add_fault("status", method="POST", path="/v2/datasets/upload", status=400)

    assert operator(file=good_file).execute(make_context(run_id="week_2")) == "tickets"
    assert emulator.admin.faults()["rules"][0]["remaining"] == 1  # no upload was started
    assert len(datasets(emulator)) == 1


def test_other_content_under_the_same_name_fails_and_says_how_to_version(
    emulator: Any, good_file: str, other_file: str
):
    operator(file=good_file).execute(make_context(run_id="week_1"))
    with pytest.raises(PredibaseInvalidParameter, match=r"other content.*if_exists='version'"):
        operator(file=other_file).execute(make_context(run_id="week_2"))
    assert len(datasets(emulator)) == 1


def test_dataset_made_outside_the_operator_is_never_claimed(
    emulator: Any, client: Any, good_file: str
):
    client.upload_dataset("tickets", Path(good_file).read_bytes(), "tickets.jsonl")
    with pytest.raises(PredibaseInvalidParameter, match="unknown origin"):
        operator(file=good_file).execute(make_context())


def test_version_mode_uploads_new_content_under_the_next_free_name(
    emulator: Any, tmp_path: Path, good_file: str, other_file: str
):
    third = write(tmp_path, "third.jsonl", jsonl(ROWS[:1]))

    def run(path: str) -> str:
        result: str = operator(file=path, if_exists="version").execute(make_context())
        return result

    assert run(good_file) == "tickets"
    assert run(other_file) == "tickets-v2"
    assert run(other_file) == "tickets-v2"  # same content: reused
    assert run(good_file) == "tickets"  # an older version holding this content
    assert run(third) == "tickets-v3"
    assert sorted(datasets(emulator)) == ["tickets", "tickets-v2", "tickets-v3"]


def test_lost_response_of_the_upload_completion_creates_one_dataset(emulator: Any, good_file: str):
    emulator.admin.add_fault("drop_after", method="PUT", path="/v2/datasets/upload")
    assert operator(file=good_file).execute(make_context()) == "tickets"
    assert datasets(emulator)["tickets"]["status"] == "connected"
    assert len(datasets(emulator)) == 1


def test_lost_response_of_a_source_connect_creates_one_dataset(emulator: Any, good_file: str):
    emulator.admin.add_fault("drop_after", method="POST", path="/v2/datasets")
    assert operator(source=good_file).execute(make_context()) == "tickets"
    assert len(datasets(emulator)) == 1


# -- datasets the platform cannot read -----------------------------------------------------


def test_errored_dataset_fails_with_the_reason_then_explains_the_retry(
    emulator: Any, good_file: str
):
    emulator.admin.fail_next("datasets", error="bucket permission denied")
    with pytest.raises(PredibaseJobFailed, match="bucket permission denied") as failure:
        operator(file=good_file).execute(make_context())
    assert failure.value.remote_status == "errored"

    # The retry cannot help (same bytes, same name): it fails without another retry.
    with pytest.raises(PredibaseInvalidParameter, match="already holds this content but errored"):
        operator(file=good_file).execute(make_context())
    assert operator(file=good_file, if_exists="version").execute(make_context()) == "tickets-v2"


def test_source_the_platform_cannot_read_fails_with_its_reason(emulator: Any, tmp_path: Path):
    with pytest.raises(PredibaseJobFailed, match="cannot read"):
        operator(source=str(tmp_path / "gone.jsonl")).execute(make_context())


def test_parquet_unchecked_here_can_still_error_on_the_platform(
    emulator: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    # A worker without pyarrow checks only the magic bytes (a None entry hides the module).
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    path = write(tmp_path, "t.parquet", b"PAR1 not really parquet PAR1")
    with pytest.raises(PredibaseJobFailed, match="Parquet"):
        operator(file=path).execute(make_context())


# -- bad parameters and bad files ----------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"if_exists": "replace"}, r"if_exists='replace'.*reuse, version.*no 'replace'"),
        ({"task": "dpo"}, r"task='dpo'.*sft, continued_pretraining, grpo, classification, batch"),
        ({"file": "data.txt"}, r"\.csv, \.jsonl, \.json, \.parquet"),
        ({"file": "a.csv", "source": "s3://b/a.csv"}, "exactly one of file= or source="),
        ({"file": None}, "exactly one of file= or source="),
    ],
)
def test_bad_parameters_fail_at_parse_time(params: dict[str, Any], message: str):
    with pytest.raises(ValueError, match=message):
        operator(**{"file": "t.jsonl", **params})


@pytest.mark.parametrize(
    ("file_name", "content", "task", "message"),
    [
        ("t.txt", b"x", "sft", r"must end in one of \.csv, \.jsonl, \.json, \.parquet"),
        ("t.jsonl", b'{"prompt": "a", "completion": "b"}\n{oops\n', "sft", "line 2 is not JSON"),
        ("t.jsonl", b"[1, 2]\n", "sft", "line 1 is not a JSON object"),
        (
            "t.jsonl",
            jsonl([*ROWS, {"prompt": "no answer"}]),
            "sft",
            r"t\.jsonl lacks column\(s\) completion.*1 of 4 rows \(first: row 4\)",
        ),
        ("t.csv", b"prompt,label\nhi,x\n", "sft", r"lacks column\(s\) completion"),
        ("t.csv", b"prompt\nhello\n", "continued_pretraining", r"lacks column\(s\) text"),
        ("t.json", b'{"prompt": "a"}', "grpo", "JSON array of objects"),
        ("t.json", b"[", "grpo", "is not JSON"),
        ("t.jsonl", b"", "sft", "holds no rows"),
        ("t.csv", "prompt,completion\né,b\n".encode("latin-1"), "sft", "not UTF-8"),
        ("t.parquet", b"prompt,completion\n", "sft", "Parquet"),
        (
            "b.jsonl",
            jsonl([{"custom_id": "1", "body": {}}, {"custom_id": "1", "body": {}}]),
            "batch",
            r"unique, non-empty custom_id.*row 2: '1'",
        ),
        ("b.jsonl", jsonl([{"custom_id": "1"}]), "batch", r"lacks column\(s\) body"),
    ],
)
def test_bad_file_fails_before_any_request(
    unreachable: None, tmp_path: Path, file_name: str, content: bytes, task: str, message: str
):
    op = operator(file="{{ ti.xcom_pull(task_ids='build') }}", task=task)
    op.file = write(tmp_path, file_name, content)  # as rendered
    with pytest.raises(PredibaseInvalidParameter, match=message):
        op.execute(make_context())


@pytest.mark.skipif(
    importlib.util.find_spec("s3fs") is not None, reason="s3 is readable where s3fs is installed"
)
def test_storage_without_a_filesystem_names_the_missing_provider(unreachable: None):
    with pytest.raises(PredibaseInvalidParameter, match=r"s3.*apache-airflow-providers-amazon"):
        operator(file="s3://bucket/tickets.jsonl").execute(make_context())


def test_file_over_100_mb_fails_before_any_request(unreachable: None, tmp_path: Path):
    path = tmp_path / "huge.jsonl"
    with path.open("wb") as sparse:
        sparse.truncate(MAX_FILE_BYTES + 1)
    with pytest.raises(PredibaseInvalidParameter, match=r"104857601 bytes.*up to 100 MB"):
        operator(file=str(path)).execute(make_context())


def test_missing_file_is_a_retryable_error(unreachable: None, tmp_path: Path):
    with pytest.raises(AirflowException, match="cannot read dataset file") as failure:
        operator(file=str(tmp_path / "gone.jsonl")).execute(make_context())
    assert not isinstance(failure.value, PredibaseInvalidParameter)


@pytest.mark.parametrize(
    ("description", "expected"),
    [
        (None, "or the platform does not show descriptions back; see docs/platform.md"),
        ("made by hand", "not created by CreateDatasetOperator)"),
        ("[sha256:0123456789abcdef]", "other content (sha256 0123456789abcdef"),
    ],
)
def test_a_conflict_says_why_the_content_could_not_be_matched(
    tmp_path: Path, description: str | None, expected: str
) -> None:
    """A platform that shows no description back (the SDK's dataset record has none) gets
    its own message: the task fails rather than reuse data it cannot check."""
    from airflow_predibase.client.models import Dataset

    path = tmp_path / "train.jsonl"
    path.write_text('{"prompt": "p", "completion": "c"}\n')
    op = CreateDatasetOperator(task_id="up", name="d", file=str(path))
    existing = Dataset.model_validate(
        {"name": "d", "status": "connected", "description": description}
    )
    with pytest.raises(PredibaseInvalidParameter, match=r"already exists") as error:
        op._fail_conflict(existing, op._payload())
    assert expected in str(error.value)
