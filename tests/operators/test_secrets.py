"""A secret setting (``hf_token``, GRPO ``secrets``) reaches the platform and nothing else:
never a log line, a rendered template field, an XCom, a trigger row or an exception message.

Each test runs an operator end to end against the emulator (deferred, so a trigger row
exists) with a real sentinel token read from an Airflow connection or Variable, checks the
token reached the emulator, then looks for it in every channel.
"""

from __future__ import annotations

import json
import logging
import uuid
from typing import Any

import pytest

from airflow_predibase.exceptions import PredibaseInvalidParameter
from airflow_predibase.operators import AirflowSecret
from airflow_predibase.operators.batch_inference import BatchInferenceOperator
from airflow_predibase.operators.deployments import DeployOperator
from tests.operators.test_settings import BATCH_ROW, SFT_ROWS, format_reward
from tests.taskkit import finetune_operator, make_context, on_wire, run_deferred, upload


@pytest.fixture
def sentinel(monkeypatch: pytest.MonkeyPatch) -> str:
    """A token in the `huggingface` connection (password) and the `judge_key` Variable."""
    token = f"hf_SENTINEL_{uuid.uuid4().hex}"
    conn = {"conn_type": "generic", "password": token}
    monkeypatch.setenv("AIRFLOW_CONN_HUGGINGFACE", json.dumps(conn))
    monkeypatch.setenv("AIRFLOW_VAR_JUDGE_KEY", token)
    return token


class Channels:
    """Everything a task leaves behind that someone other than the platform can read."""

    def __init__(self, capsys: Any, caplog: Any) -> None:
        self.capsys, self.caplog = capsys, caplog
        self.triggers: list[str] = []
        self.context = make_context()

    def assert_clean(self, token: str, operator: Any, *extra: Any) -> None:
        captured = self.capsys.readouterr()
        logs = captured.out + captured.err + self.caplog.text
        assert logs, "no log output captured: the check would prove nothing"
        assert token not in logs, "logged"
        assert self.triggers, "no trigger row captured"
        assert token not in "".join(self.triggers), "in a trigger row or its repr"
        ti = self.context["ti"]
        assert token not in json.dumps(ti.xcoms, default=str), "in an XCom"
        operator.render_template_fields({"params": {}, "ti": ti})
        for field in operator.template_fields:
            assert token not in str(getattr(operator, field)), f"in template field {field}"
        assert token not in repr(operator.__dict__), "held by the operator object"
        for value in extra:
            assert token not in json.dumps(value, default=str)


@pytest.fixture
def channels(capsys: Any, caplog: Any) -> Channels:
    caplog.set_level(logging.DEBUG)
    return Channels(capsys, caplog)


def test_a_deployment_token_reaches_the_platform_and_nothing_else(
    wiretap: Any, sentinel: str, channels: Channels
):
    op = DeployOperator(
        task_id="deploy",
        name="router",
        base_model="qwen3-8b",
        hf_token=AirflowSecret.connection("huggingface"),
        poll_interval=0.05,
        deferrable=True,
    )
    result = run_deferred(op, channels.context, triggers=channels.triggers)
    assert on_wire(wiretap.bodies("POST", "/deployments")[0], "hf_token") == sentinel
    channels.assert_clean(sentinel, op, result)


def test_a_token_is_masked_in_logs_from_the_moment_it_is_read(emulator: Any, sentinel: str):
    # Where `airflow.sdk.log.mask_secret` registers masks, on 3.1 to 3.3 alike.
    from airflow.sdk._shared.secrets_masker import _secrets_masker

    op = DeployOperator(
        task_id="deploy",
        name="router",
        base_model="qwen3-8b",
        hf_token=AirflowSecret.variable("judge_key"),
        poll_interval=0.05,
        deferrable=False,
    )
    op.execute(make_context())
    assert _secrets_masker().redact(f"token={sentinel}") == "token=***"


def test_grpo_secrets_reach_the_platform_and_nothing_else(
    wiretap: Any, client: Any, sentinel: str, channels: Channels
):
    upload(client, "tickets", SFT_ROWS)
    op = finetune_operator(
        task="grpo",
        reward_fns=[format_reward],
        secrets={"JUDGE_KEY": AirflowSecret.variable("judge_key")},
        deferrable=True,
    )
    adapter_id = run_deferred(op, channels.context, triggers=channels.triggers)
    [sent] = wiretap.bodies("POST", "/finetuning/jobs")
    assert on_wire(sent, "secrets") == {"JUDGE_KEY": sentinel}
    job = client.list_finetuning_jobs()[0]
    lineage = op._lineage
    channels.assert_clean(sentinel, op, adapter_id, job.model_dump(mode="json"), repr(lineage))
    assert sentinel not in (job.description or "")  # the idempotency marker


def test_a_batch_token_reaches_the_platform_and_nothing_else(
    wiretap: Any, client: Any, sentinel: str, channels: Channels
):
    upload(client, "batch-in", [BATCH_ROW])
    op = BatchInferenceOperator(
        task_id="score",
        base_model="qwen3-8b",
        dataset="batch-in",
        server_config={"backend": "v3"},  # the token must not join the operator's own dict
        hf_token=AirflowSecret.connection("huggingface"),
        poll_interval=0.05,
        deferrable=True,
    )
    result = run_deferred(op, channels.context, triggers=channels.triggers)
    [sent] = wiretap.bodies("POST", "batch-inference")
    assert on_wire(sent, "hf_token") == sentinel
    channels.assert_clean(sentinel, op, result)


def test_a_rotated_token_reuses_the_job_it_started(
    wiretap: Any, client: Any, monkeypatch: pytest.MonkeyPatch
):
    """The token is not part of the request's identity: a retry after a rotation re-attaches."""
    upload(client, "batch-in", [BATCH_ROW])
    first_token, second_token = "hf_first_0001", "hf_second_0002"

    def run(token: str) -> dict[str, Any]:
        monkeypatch.setenv("AIRFLOW_VAR_HF", token)
        return BatchInferenceOperator(
            task_id="score",
            base_model="qwen3-8b",
            dataset="batch-in",
            hf_token=AirflowSecret.variable("hf"),
            poll_interval=0.05,
        ).execute(make_context(task_id="score"))

    assert run(first_token)["job_id"] == run(second_token)["job_id"]
    assert len(wiretap.bodies("POST", "batch-inference")) == 1


@pytest.mark.parametrize("where", ["rejected by the server", "invalid request"])
def test_error_messages_never_hold_the_token(
    emulator: Any, sentinel: str, where: str, monkeypatch: pytest.MonkeyPatch
):
    if where == "rejected by the server":
        # The platform answers an unknown accelerator with a 400 naming the valid ones.
        op = DeployOperator(
            task_id="deploy",
            name="router",
            base_model="qwen3-8b",
            accelerator="b200_192gb_100",
            hf_token=AirflowSecret.connection("huggingface"),
            deferrable=False,
        )
    else:
        # A setting that only fails once rendered, with the token already read.
        op = finetune_operator(
            task="{{ params.task }}",
            reward_fns=[format_reward],
            secrets={"JUDGE_KEY": AirflowSecret.variable("judge_key")},
        )
        op.task = "sft"
    with pytest.raises(PredibaseInvalidParameter) as error:
        op.execute(make_context(task_id=op.task_id))
    chain = [error.value, error.value.__cause__, error.value.__context__]
    text = " ".join(f"{e!s} {e!r}" for e in chain if e is not None)
    assert "is not offered" in text or "GRPO settings" in text
    assert sentinel not in text
