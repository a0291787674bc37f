"""Pure pieces of the emulator: timelines, profiles, tokens, file reading, stores."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import ValidationError

import airflow_predibase.emulator as emulator_pkg
from airflow_predibase.emulator.config import PROFILES, EmulatorConfig, TimingProfile
from airflow_predibase.emulator.lifecycle import advanced, locate, reached, timeline
from airflow_predibase.emulator.model_behaviour import (
    AdapterMemory,
    count_tokens,
    generate,
    tokens_of,
)
from airflow_predibase.emulator.store import MemoryStore, SqliteStore, Store
from airflow_predibase.emulator.tabular import TableError, detect_format, read_table

PACKAGE = Path(emulator_pkg.__file__).parent


def test_a_timeline_walks_its_phases_and_stays_in_the_last() -> None:
    tl = timeline([("queued", 1.0), ("training", 3.0), ("completed", None)], anchor=100.0)
    assert locate(tl, 100.5).status == "queued"
    assert locate(tl, 101.0).status == "training"
    assert locate(tl, 102.5).fraction(102.5) == pytest.approx(0.5)
    assert locate(tl, 10_000.0).status == "completed"
    assert reached(tl, 102.0) == {"queued": 100.0, "training": 101.0}


def test_advancing_starts_the_next_phase_now() -> None:
    tl = timeline([("pending", 50.0), ("ready", None)], anchor=0.0)
    moved = advanced(tl, now=10.0)
    assert locate(moved, 10.0).status == "ready"
    assert locate(moved, 10.0).started == 10.0
    assert advanced(moved, 20.0) == moved  # the last phase has nowhere to go


def test_a_timeline_must_end_open() -> None:
    with pytest.raises(ValueError, match="open-ended"):
        timeline([("queued", 1.0)], anchor=0.0)


def test_profiles_refuse_zero_durations_so_nothing_is_born_finished() -> None:
    durations = PROFILES["fast"].model_dump() | {"finetuning_training": 0}
    with pytest.raises(ValidationError, match="finetuning_training"):
        TimingProfile.model_validate(durations)


def test_config_takes_a_profile_name_and_names_the_valid_ones_otherwise() -> None:
    assert EmulatorConfig(profile="instant").profile.advance_on_read
    with pytest.raises(ValidationError, match="instant, fast, realistic"):
        EmulatorConfig(profile="glacial")
    with pytest.raises(ValidationError, match="tenant"):
        EmulatorConfig(tenant="a/b")


def test_tokens_rebuild_the_text_and_agree_with_the_counts() -> None:
    text = "  Hello   world,\nthis is\ta test "
    assert "".join(tokens_of(text)) == text
    assert len(tokens_of(text)) == count_tokens(text) == 6


def test_generation_honours_stop_sequences_and_the_token_limit() -> None:
    stopped = generate("one two three four", "p", None, ["three"])
    assert (stopped.text, stopped.finish_reason) == ("one two ", "stop_sequence")
    cut = generate("one two three four", "a prompt", 2, None)
    assert (cut.text, cut.finish_reason, cut.generated_tokens) == ("one two ", "length", 2)
    assert cut.prompt_tokens == 2
    whole = generate("one two", "p", 10, None)
    assert whole.finish_reason == "eos_token"


def test_adapter_memory_recalls_exact_prompts_and_generalises_by_overlap() -> None:
    memory = AdapterMemory(
        [("the cat sat", "feline"), ("a dog barked loudly", "canine"), ("a dog ran", "canine")]
    )
    assert memory.answer("the cat sat") == "feline"
    assert memory.answer("THE CAT sat down") == "feline"
    assert memory.answer("which dog barked") == "canine"
    assert memory.answer("zebra") == "canine"  # no overlap at all: the commonest answer


@pytest.mark.parametrize(
    ("name", "mime", "expected"),
    [
        ("a.csv", None, "csv"),
        ("a.JSONL", None, "jsonl"),
        ("a.json", None, "json"),
        ("a.parquet", None, "parquet"),
        ("blob", "text/csv", "csv"),
        ("a.txt", "text/plain", None),
    ],
)
def test_format_detection(name: str, mime: str | None, expected: str | None) -> None:
    assert detect_format(name, mime) == expected


def test_each_text_format_reads_rows_and_columns() -> None:
    csv_table = read_table(b"prompt,completion\nhi,there\n", "csv")
    assert (csv_table.columns, csv_table.rows) == (
        ["prompt", "completion"],
        [{"prompt": "hi", "completion": "there"}],
    )
    jsonl_table = read_table(b'{"a": 1}\n\n{"b": 2}\n', "jsonl")
    assert jsonl_table.columns == ["a", "b"]
    assert len(jsonl_table.rows) == 2
    columns = read_table(
        json.dumps({"prompt": ["x", "y"], "completion": ["1", "2"]}).encode(), "json"
    )
    assert columns.rows[1] == {"prompt": "y", "completion": "2"}


@pytest.mark.parametrize(
    ("data", "fmt", "reason"),
    [
        (b"", "csv", "empty"),
        (b'{"a": 1}\nnot json\n', "jsonl", "line 2"),
        (b"[1, 2]", "json", "array of objects"),
        (b"\xff\xfe\x00", "csv", "UTF-8"),
        (b"PAR1garbage", "parquet", "arquet"),
    ],
)
def test_unreadable_files_give_a_reason(data: bytes, fmt: str, reason: str) -> None:
    with pytest.raises(TableError, match=reason):
        read_table(data, fmt)


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    if request.param == "memory":
        return MemoryStore()
    return SqliteStore(tmp_path / "state.db")


def test_both_stores_behave_alike(store: Store) -> None:
    store.put("job", "b", {"n": 1})
    store.put("job", "a", {"n": 2})
    store.put("job", "b", {"n": 3})  # an update keeps its place in the listing
    doc = store.get("job", "b")
    assert doc == {"n": 3}
    assert doc is not None
    doc["n"] = 99  # a copy: editing it changes nothing stored
    assert store.get("job", "b") == {"n": 3}
    assert [d["n"] for d in store.list("job")] == [3, 2]
    assert store.count("job") == 2
    assert store.delete("job", "a") is True
    assert store.delete("job", "a") is False
    store.put_blob("k", b"bytes")
    assert store.get_blob("k") == b"bytes"
    store.clear()
    assert store.list("job") == []
    assert store.get_blob("k") is None
    store.close()


def test_the_docs_show_the_example_test_verbatim() -> None:
    root = PACKAGE.parents[1]
    example = (root / "tests" / "emulator" / "test_emulator_docs_example.py").read_text()
    code = example[example.index("import json") :]
    docs = (root / "docs" / "emulator.md").read_text()
    assert f"```python\n{code}```" in docs
