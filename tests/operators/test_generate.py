"""PredibaseGenerateOperator over real HTTP against an emulator deployment: the adapter
answers what it was trained on, the base model something else."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from airflow_predibase.client.errors import NotFoundError
from airflow_predibase.client.models import DeploymentRequest, FinetuningJobRequest, RepoRequest
from airflow_predibase.operators.generate import PredibaseGenerateOperator, _LineLog
from tests.taskkit import upload

ROWS = [
    {"prompt": "Ticket: my card was charged twice\nCategory:", "completion": "billing"},
    {"prompt": "Ticket: where is my parcel\nCategory:", "completion": "shipping"},
]


@pytest.fixture
def served(client: Any) -> str:
    """A ready deployment and a ready adapter `tickets/1` trained on ROWS."""
    upload(client, "rows", ROWS)
    client.create_repo(RepoRequest(name="tickets"))
    client.create_finetuning_job(
        FinetuningJobRequest(base_model="qwen3-8b", dataset="rows", repo="tickets")
    )
    client.create_deployment(DeploymentRequest(name="dep", base_model="qwen3-8b"))
    deadline = time.monotonic() + 10
    while not (
        client.get_deployment("dep").status.is_serving
        and client.get_adapter_version("tickets", 1).status.is_success
    ):
        assert time.monotonic() < deadline, "deployment or adapter never became ready"
        time.sleep(0.05)
    return "tickets/1"


def operator(**kwargs: Any) -> PredibaseGenerateOperator:
    params: dict[str, Any] = {"task_id": "generate", "deployment": "dep"}
    params.update(kwargs)
    return PredibaseGenerateOperator(**params)


@pytest.mark.parametrize("mode", ["generate", "chat"])
@pytest.mark.parametrize("stream", [False, True])
def test_a_list_of_prompts_gives_one_result_each_in_order(
    emulator: Any, served: str, mode: str, stream: bool
):
    prompts = [ROWS[1]["prompt"], ROWS[0]["prompt"]]
    results = operator(prompts=prompts, adapter_id=served, mode=mode, stream=stream).execute({})
    assert [r["prompt"] for r in results] == prompts
    assert [r["text"].strip() for r in results] == ["shipping", "billing"]
    for result in results:
        assert result["adapter_id"] == served
        assert result["mode"] == mode
        assert result["finish_reason"]
        assert result["generated_tokens"] >= 1
        assert result["prompt_tokens"] >= 1


def test_one_prompt_gives_one_result_and_the_base_model_is_the_default(emulator: Any, served: str):
    result = operator(prompts=ROWS[0]["prompt"], max_new_tokens=4).execute({})
    assert isinstance(result, dict)
    assert result["adapter_id"] is None
    assert result["text"].strip() != "billing"  # the base model was not trained on it
    assert result["generated_tokens"] <= 4


def test_chat_sends_the_system_prompt_and_the_parameters(emulator: Any, served: str):
    result = operator(
        prompts=ROWS[0]["prompt"],
        mode="chat",
        adapter_id=served,
        system_prompt="Answer with one word.",
        temperature=0.0,
        top_p=0.9,
        max_new_tokens=8,
        stop=["\n"],
    ).execute({})
    assert result["text"].strip() == "billing"


def test_streaming_logs_the_tokens_as_lines(
    emulator: Any, served: str, capsys: pytest.CaptureFixture[str]
):
    operator(prompts=[ROWS[0]["prompt"]], adapter_id=served, stream=True).execute({})
    assert "[1/1] billing" in capsys.readouterr().out  # the task log, as Airflow writes it


def test_streamed_tokens_are_logged_in_readable_lines():
    lines: list[str] = []
    now = [0.0]
    with _LineLog(lambda fmt, *args: lines.append(fmt % args), "[1/2]", lambda: now[0]) as log:
        for token in ["Hel", "lo", " wor", "ld\nsec", "ond"]:
            log.add(token)
        now[0] = 5.0
        log.add(" line")  # a pause: what arrived is logged rather than held back
        log.add("x" * 120)  # a long run of text without a newline is cut into a line
        log.add("tail")
    assert lines == ["[1/2] Hello world", "[1/2] second line", "[1/2] " + "x" * 120, "[1/2] tail"]


def test_prompts_adapter_and_deployment_are_templated(emulator: Any, served: str):
    from airflow.sdk.definitions.context import Context

    op = operator(
        deployment="{{ params.deployment }}",
        prompts=["{{ params.ticket }}"],
        adapter_id="{{ params.repo }}/1",
    )
    op.render_template_fields(
        Context(params={"deployment": "dep", "ticket": ROWS[1]["prompt"], "repo": "tickets"})  # type: ignore[typeddict-unknown-key]
    )
    [result] = op.execute({})
    assert (result["adapter_id"], result["text"].strip()) == ("tickets/1", "shipping")


def test_results_go_to_a_jsonl_file_when_asked(emulator: Any, served: str, tmp_path: Path):
    target = tmp_path / "out" / "scores.jsonl"
    prompts = [row["prompt"] for row in ROWS]
    returned = operator(prompts=prompts, adapter_id=served, output_path=str(target)).execute({})
    assert returned == str(target)
    rows = [json.loads(line) for line in target.read_text().splitlines()]
    assert [(r["prompt"], r["text"].strip()) for r in rows] == [
        (ROWS[0]["prompt"], "billing"),
        (ROWS[1]["prompt"], "shipping"),
    ]


def test_results_go_to_an_object_storage_path(emulator: Any, served: str, tmp_path: Path):
    from airflow.sdk import ObjectStoragePath

    target = ObjectStoragePath(f"file://{tmp_path}/scores.jsonl")
    returned = operator(prompts=ROWS[0]["prompt"], adapter_id=served, output_path=target).execute(
        {}
    )
    assert returned == str(target)
    [row] = [json.loads(line) for line in (tmp_path / "scores.jsonl").read_text().splitlines()]
    assert row["text"].strip() == "billing"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"mode": "complete"}, "mode must be one of generate, chat"),
        ({"max_new_tokens": 0}, "max_new_tokens must be a whole number >= 1"),
        ({"max_new_tokens": 2.5}, "max_new_tokens must be a whole number >= 1"),
        ({"temperature": -0.1}, "temperature must be >= 0 and <= 2"),
        ({"temperature": "hot"}, "temperature must be a number"),
        ({"top_p": 0}, "top_p must be > 0 and <= 1"),
        ({"top_p": 1.5}, "top_p must be > 0 and <= 1"),
        ({"top_k": 0}, "top_k must be a whole number >= 1"),
        ({"top_k": 5, "mode": "chat"}, "top_k is a generate-mode parameter"),
        ({"system_prompt": "be brief"}, 'system_prompt is for mode="chat"'),
        ({"stop": [""]}, "stop must be a string or a list of non-empty strings"),
    ],
)
def test_bad_parameters_fail_when_the_dag_is_parsed(kwargs: dict[str, Any], message: str):
    with pytest.raises(ValueError, match=message):
        operator(prompts="x", **kwargs)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"prompts": []}, "prompts is empty"),
        ({"prompts": ["ok", " "]}, "each prompt must be a non-empty string"),
        ({"prompts": "x", "adapter_id": "tickets"}, 'adapter_id must be "<repo>/<version>"'),
    ],
)
def test_bad_rendered_values_fail_before_any_call(kwargs: dict[str, Any], message: str):
    with pytest.raises(ValueError, match=message):
        operator(**kwargs).execute({})


def test_an_unknown_deployment_fails_with_the_servers_error(emulator: Any, served: str):
    with pytest.raises(NotFoundError):
        operator(deployment="nope", prompts="x").execute({})
