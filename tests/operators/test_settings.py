"""Every setting the platform accepts (issue 9, point 4): each reaches the emulator over real
HTTP, typed and validated, with errors that name the field.

What reached the emulator is read twice: from the request as it arrived (a recording proxy,
`wiretap`), and from what the emulator shows back where it keeps the setting.
"""

from __future__ import annotations

import base64
import inspect
import json
import math
from collections.abc import Iterator
from typing import Any

import pytest

from airflow_predibase.client.models import ACCELERATORS
from airflow_predibase.emulator.pytest_plugin import CONNECTION_ENV
from airflow_predibase.exceptions import PredibaseInvalidParameter
from airflow_predibase.operators import AirflowSecret
from airflow_predibase.operators.batch_inference import BatchInferenceOperator
from airflow_predibase.operators.deployments import DeployOperator
from airflow_predibase.operators.finetuning import FinetuneOperator
from tests.operators import rewards
from tests.taskkit import Wiretap, finetune_operator, make_context, on_wire, upload

SFT_ROWS = [{"prompt": "a b c", "completion": "x"}, {"prompt": "d e f", "completion": "y"}]
# Columns for every task: sft/grpo (prompt, completion), classification (text, label).
ALL_ROWS = [{**row, "text": row["prompt"], "label": row["completion"]} for row in SFT_ROWS]
BATCH_ROW = {
    "custom_id": "r1",
    "method": "POST",
    "url": "/v1/chat/completions",
    "body": {"model": "", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 4},
}


def format_reward(prompt, completion, example):
    """A reward function defined in the DAG file."""
    return 1.0 if completion.strip().endswith(".") else 0.0


def sdk_encoding(fn: Any) -> str:
    """What the SDK's RewardFunction.from_callable sends: base64 of inspect.getsource."""
    return base64.b64encode(inspect.getsource(fn).encode("utf-8")).decode("utf-8")


def deploy(**overrides: Any) -> DeployOperator:
    params: dict[str, Any] = {
        "task_id": "deploy",
        "name": "router",
        "base_model": "qwen3-8b",
        "accelerator": "a10_24gb",
        "poll_interval": 0.05,
        "deferrable": False,
    }
    params.update(overrides)
    return DeployOperator(**params)


def batch(**overrides: Any) -> BatchInferenceOperator:
    params: dict[str, Any] = {
        "task_id": "score",
        "base_model": "qwen3-8b",
        "dataset": "batch-in",
        "poll_interval": 0.05,
        "deferrable": False,
    }
    params.update(overrides)
    return BatchInferenceOperator(**params)


def grpo(**overrides: Any) -> FinetuneOperator:
    params: dict[str, Any] = {"task": "grpo", "reward_fns": [format_reward]}
    params.update(overrides)
    return finetune_operator(**params)


# -- fine-tuning ---------------------------------------------------------------------------

TRAINING = {
    "epochs": 2,
    "learning_rate": 0.0001,
    "rank": 8,
    "target_modules": ["q_proj", "v_proj"],
    "lora_alpha": 16,
    "lora_dropout": 0.05,
    "apply_chat_template": True,
    "enable_early_stopping": False,
    "lr_scheduler": {"type": "cosine_with_restarts", "params": {"num_cycles": 2}},
    "optimizer": {"type": "adamw_torch", "params": {"weight_decay": 0.01}},
    "warmup_ratio": 0.1,
    "effective_batch_size": 16,
}
TRAINING_COMPUTE = {"region": "us-west-2", "requests": {"trainer": {"sku": "a100_80gb_100"}}}


def test_every_training_setting_reaches_the_emulator(wiretap: Any, client: Any):
    upload(client, "tickets", SFT_ROWS)
    adapter = finetune_operator(hyperparameters=TRAINING, compute_spec=TRAINING_COMPUTE).execute(
        make_context(task_id="finetune")
    )
    [sent] = wiretap.bodies("POST", "/finetuning/jobs")
    for name, value in {**TRAINING, "compute_spec": TRAINING_COMPUTE}.items():
        assert on_wire(sent, name) == value, name
    assert on_wire(sent, "task") == "sft"
    assert adapter == "router/1"  # accepted and trained


def test_continue_from_version_is_its_own_argument(wiretap: Any, client: Any):
    upload(client, "tickets", SFT_ROWS)
    first = finetune_operator().execute(make_context(task_id="finetune", run_id="a"))
    second = finetune_operator(continue_from_version="{{ params.parent }}")
    second.continue_from_version = first  # as the template renders an upstream XCom
    assert second.execute(make_context(task_id="finetune", run_id="b")) == "router/2"
    sent = wiretap.bodies("POST", "/finetuning/jobs")[-1]
    assert on_wire(sent, "continue_from_version") == "router/1"


def test_continue_from_version_given_twice_is_refused():
    with pytest.raises(ValueError, match="continue_from_version is given twice"):
        finetune_operator(
            continue_from_version="router/1", hyperparameters={"continue_from_version": "r/2"}
        )


def test_grpo_settings_and_reward_functions_reach_the_emulator_as_the_sdk_encodes_them(
    wiretap: Any, client: Any, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("AIRFLOW_VAR_JUDGE_KEY", "sk-judge-7f3a")
    upload(client, "tickets", SFT_ROWS)
    sampling = {"temperature": 0.9, "top_p": 0.95, "top_k": 50, "max_tokens": 256}
    op = grpo(
        reward_fns={
            "functions": [format_reward, "tests.operators.rewards:length_reward"],
            "runtime": {"packages": ["rapidfuzz==3.9.0"]},
        },
        secrets={"JUDGE_KEY": AirflowSecret.variable("judge_key")},
        hyperparameters={"beta": 0.04, "num_generations": 8, "sampling_params": sampling},
    )
    assert op.execute(make_context(task_id="finetune")) == "router/1"
    [sent] = wiretap.bodies("POST", "/finetuning/jobs")
    assert on_wire(sent, "task") == "grpo"
    assert on_wire(sent, "beta") == 0.04
    assert on_wire(sent, "num_generations") == 8
    assert on_wire(sent, "sampling_params") == sampling
    assert on_wire(sent, "secrets") == {"JUDGE_KEY": "sk-judge-7f3a"}
    reward_fns = on_wire(sent, "reward_fns")
    assert on_wire(reward_fns, "runtime") == {"packages": ["rapidfuzz==3.9.0"]}
    functions = on_wire(reward_fns, "functions")
    assert set(functions) == {"format_reward", "length_reward"}
    assert on_wire(functions["format_reward"], "encoded_fn") == sdk_encoding(format_reward)
    assert on_wire(functions["length_reward"], "encoded_fn") == sdk_encoding(rewards.length_reward)


def test_reward_functions_are_json_from_the_start_and_survive_templating():
    op = grpo(reward_fns=[format_reward, "tests.operators.rewards.length_reward"])
    assert op.reward_fns == {
        "format_reward": {"encoded_fn": sdk_encoding(format_reward)},
        "length_reward": "tests.operators.rewards.length_reward",  # imported on the worker
    }
    assert json.loads(json.dumps(op.reward_fns)) == op.reward_fns
    op.render_template_fields({"params": {}})
    assert op.reward_fns["format_reward"] == {"encoded_fn": sdk_encoding(format_reward)}


def test_an_import_path_is_imported_when_the_task_runs_not_when_the_dag_is_parsed(
    emulator: Any, client: Any, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
):
    op = grpo(reward_fns=["late_rewards:brevity"])  # not importable yet: parsing is fine
    (tmp_path / "late_rewards.py").write_text(
        "def brevity(prompt, completion, example):\n    return 1.0 / (1 + len(completion))\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    upload(client, "tickets", SFT_ROWS)
    assert op.execute(make_context(task_id="finetune")) == "router/1"


def test_an_import_path_that_does_not_import_fails_naming_the_function(emulator: Any):
    op = grpo(reward_fns={"judge": "no_such_package.rewards:judge"})
    with pytest.raises(PredibaseInvalidParameter, match=r"reward_fns\.judge: cannot import"):
        op.execute(make_context(task_id="finetune"))
    assert emulator.admin.state()["finetuning_jobs"] == []


@pytest.mark.parametrize(
    ("reward_fns", "expected"),
    [
        (
            [rewards.two_arguments],
            r"reward_fns\.two_arguments: reward function 'two_arguments' takes 2 "
            r"argument\(s\) \(prompt, completion\); expected 3",
        ),
        ([lambda p, c, e: 0.0], r"reward_fns\.<lambda>: .*module-level"),
        (["not a path"], r"reward_fns\[0\]='not a path' is not an import path"),
        (
            {"f": {"encoded_fn": "%%%"}},
            r"reward_fns\.f: encoded_fn='%%%' is not valid: must be base64",
        ),
        ([], "non-empty list"),
    ],
)
def test_bad_reward_functions_fail_at_parse_naming_the_field(reward_fns: Any, expected: str):
    with pytest.raises(ValueError, match=expected):
        grpo(reward_fns=reward_fns)


def test_a_reward_function_named_by_path_is_checked_like_a_function_when_the_task_runs(
    emulator: Any,
):
    op = grpo(reward_fns=["tests.operators.rewards:two_arguments"])
    with pytest.raises(PredibaseInvalidParameter, match=r"reward_fns\.two_arguments: .*expected 3"):
        op.execute(make_context(task_id="finetune"))


def test_the_classification_task_reaches_the_emulator(wiretap: Any, client: Any):
    upload(client, "tickets", ALL_ROWS)
    finetune_operator(task="classification").execute(make_context(task_id="finetune"))
    [sent] = wiretap.bodies("POST", "/finetuning/jobs")
    assert on_wire(sent, "task") == "classification"


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        (
            {"hyperparameters": {"warmup_ratio": "inf"}},
            r"warmup_ratio='inf' is not valid: .*finite",
        ),
        ({"hyperparameters": {"warmup_ratio": math.inf}}, r"hyperparameters\.warmup_ratio"),
        ({"hyperparameters": {"learning_rate": "nan"}}, r"learning_rate='nan' is not valid"),
        (
            {"hyperparameters": {"lr_scheduler": {"type": "cosine", "min_lr": math.nan}}},
            r"lr_scheduler\.min_lr",
        ),
        ({"hyperparameters": {"lora_dropout": 1.5}}, r"lora_dropout=1\.5 is not valid"),
        ({"hyperparameters": {"effective_batch_size": 0}}, r"effective_batch_size=0"),
        ({"hyperparameters": {"warmup_ratio": 0}}, r"warmup_ratio=0 is not valid"),
        ({"hyperparameters": {"optimizer": "adam"}}, r"optimizer='adam' is not valid"),
        ({"hyperparameters": {"beta": 0.1}}, r"beta: GRPO settings, for task 'grpo' only"),
        (
            {"task": "classification", "adapter_type": "turbo"},
            r"adapter_type='turbo' does not apply to task 'classification'",
        ),
        ({"task": "dpo"}, r"task='dpo' is not valid; choose one of: .*classification"),
        ({"compute_spec": {"requests": {"trainer": {}}}}, r"compute_spec\.requests\.trainer\.sku"),
        ({"compute_spec": {"gpu": "a100"}}, r"compute_spec\.gpu=.*extra inputs"),
        ({"hyperparameters": {"compute_spec": {}}}, r"pass compute_spec= to FinetuneOperator"),
        ({"hyperparameters": {"secrets": {}}}, r"pass secrets= to FinetuneOperator"),
        ({"hyperparameters": {"lr_schedule": {}}}, r"unknown keys \['lr_schedule'\].*lr_scheduler"),
    ],
)
def test_bad_training_settings_fail_at_parse_naming_the_field(overrides: Any, expected: str):
    with pytest.raises(ValueError, match=expected) as error:
        finetune_operator(**overrides)
    assert "[type=" not in str(error.value)


@pytest.mark.parametrize(
    ("sampling", "expected"),
    [
        ({"temperature": -1}, r"sampling_params\.temperature=-1"),
        ({"top_p": 0}, r"sampling_params\.top_p=0"),
        ({"top_k": 0}, r"sampling_params\.top_k=0 .*-1"),
        ({"temprature": 1.0}, r"sampling_params\.temprature=1\.0 is not valid: extra inputs"),
        ({"max_tokens": math.inf}, r"max_tokens"),
    ],
)
def test_bad_sampling_params_name_the_field(sampling: Any, expected: str):
    with pytest.raises(ValueError, match=expected):
        grpo(hyperparameters={"sampling_params": sampling})


def test_a_setting_rendered_from_a_template_is_checked_before_any_request(emulator: Any):
    op = finetune_operator(hyperparameters="{{ params.hp }}")
    op.hyperparameters = '{"warmup_ratio": "inf"}'
    with pytest.raises(PredibaseInvalidParameter, match=r"warmup_ratio='inf' is not valid"):
        op.execute(make_context(task_id="finetune"))
    assert emulator.admin.state()["finetuning_jobs"] == []


# -- deployments ---------------------------------------------------------------------------

SERVING = {
    "scale_up_threshold": 4,
    "max_total_tokens": 8192,
    "max_num_batched_tokens": 4096,
    "prefix_caching": True,
    "chunked_prefill": True,
    "speculator": "disabled",
    "speculation_disable_by_batch_size": 32,
    "uses_guaranteed_capacity": False,
    "custom_args": ["--max-batch-size", "8"],
    "lorax_image_tag": "lorax:2025.10",
    "request_logging_enabled": True,
    "direct_ingress": True,
    "backend": "v2",
    "disable_adapters": False,
    "merge_adapter": False,
    "cache_model": True,
    "compute_spec": {"requests": {"inference": {"sku": "a10_24gb_100"}}, "region": "us-west-2"},
}


def test_every_serving_setting_reaches_the_emulator(wiretap: Any):
    result = deploy(config=SERVING, quantization="fp8", cooldown_time=600).execute(make_context())
    assert result["action"] == "created"
    [sent] = wiretap.bodies("POST", "/deployments")
    for name, value in {**SERVING, "quantization": "fp8", "cooldown_time": 600}.items():
        assert on_wire(sent, name) == value, name
    assert on_wire(sent, "accelerator") == "a10_24gb_100"


def test_an_update_sends_the_changed_settings_and_the_token(
    wiretap: Any, client: Any, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("AIRFLOW_VAR_HF_TOKEN", "hf_update_token_51c2")
    deploy(max_replicas=1).execute(make_context())
    again = deploy(max_replicas=2, hf_token=AirflowSecret.variable("hf_token"))
    assert again.execute(make_context())["action"] == "updated"
    [sent] = wiretap.bodies("PUT", "/deployments/router")
    assert on_wire(sent, "max_replicas") == 2
    assert on_wire(sent, "hf_token") == "hf_update_token_51c2"
    assert client.get_deployment("router").max_replicas == 2


def test_a_token_alone_does_not_update_a_deployment(wiretap: Any, monkeypatch: pytest.MonkeyPatch):
    """The platform never reports the token, so it cannot be compared."""
    monkeypatch.setenv("AIRFLOW_VAR_HF_TOKEN", "hf_token_9a1e")
    deploy().execute(make_context())
    again = deploy(hf_token=AirflowSecret.variable("hf_token")).execute(make_context())
    assert again["action"] == "unchanged"
    assert wiretap.bodies("PUT", "/deployments") == []


@pytest.fixture
def both_dialects(emulator: Any) -> Iterator[Wiretap]:
    """An emulator that speaks both dialects (`--dialect default`), whatever the session's
    speaks, behind a recording proxy."""
    from airflow_predibase.emulator.server import EmulatorServer

    with EmulatorServer(dialect="default", profile=emulator.config.profile) as server:
        tap = Wiretap(server)
        yield tap
        tap.close()


@pytest.mark.parametrize("dialect", ["spec", "platform"])
def test_an_accelerator_outside_the_known_table_is_sent_and_the_server_answers_for_it(
    both_dialects: Wiretap, monkeypatch: pytest.MonkeyPatch, dialect: str
):
    """Accelerators are open: parsing accepts any ID; the server's 400 becomes an error
    that names the field and the IDs the server reports, not retried. In both dialects."""
    wiretap, emulator = both_dialects, both_dialects.emulator
    monkeypatch.setenv(CONNECTION_ENV, wiretap.connection_json(dialect=dialect))
    op = deploy(accelerator="b200_192gb_100")  # no error when the DAG is parsed
    with pytest.raises(PredibaseInvalidParameter) as error:
        op.execute(make_context())
    message = str(error.value)
    assert "accelerator='b200_192gb_100' is not offered by the platform" in message
    assert "valid choices (as the platform reports them): a10_24gb_100, l4_24gb_100" in message
    [sent] = wiretap.bodies("POST", "/deployments")
    assert on_wire(sent, "accelerator") == "b200_192gb_100"
    assert emulator.admin.state()["deployments"] == []


@pytest.fixture
def newer_platform(emulator: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Wiretap]:
    """A platform that has hardware the provider's table does not list (an emulator started
    with one more accelerator ID), behind a recording proxy; the connection points at it."""
    from airflow_predibase.emulator.server import EmulatorServer

    known = {**ACCELERATORS, "h200_141gb_100": "1x H200"}
    with EmulatorServer(
        dialect=emulator.config.dialect, profile=emulator.config.profile, accelerators=known
    ) as server:
        tap = Wiretap(server)
        monkeypatch.setenv(CONNECTION_ENV, tap.connection_json())
        yield tap
        tap.close()


@pytest.mark.parametrize("how", ["accelerator", "compute_spec"])
def test_hardware_the_server_knows_just_works(newer_platform: Wiretap, how: str):
    """An ID outside the provider's table goes through when the platform offers it."""
    assert "h200_141gb_100" not in ACCELERATORS
    spec = {"requests": {"inference": {"sku": "h200_141gb_100"}}}
    if how == "accelerator":
        op = deploy(accelerator="h200_141gb_100")
    else:
        op = deploy(accelerator=None, config={"compute_spec": spec})
    result = op.execute(make_context())
    assert result["action"] == "created"
    [deployment] = newer_platform.emulator.admin.state()["deployments"]
    assert deployment["accelerator"] == "h200_141gb_100"
    [sent] = newer_platform.bodies("POST", "/deployments")
    if how == "compute_spec":
        assert on_wire(sent, "compute_spec") == spec


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"config": {"backend": "v4"}}, r"backend='v4' is not valid: .*'v1', 'v2' or 'v3'"),
        ({"config": {"max_num_batched_tokens": 0}}, r"max_num_batched_tokens=0 is not valid"),
        ({"config": {"custom_args": "--x"}}, r"custom_args='--x' is not valid"),
        ({"config": {"compute_spec": {"requests": {}}}}, r"compute_spec\.requests\.inference"),
        ({"config": {"hf_token": "hf_x"}}, r"config sets hf_token: pass hf_token="),
        ({"config": {"accelerator": "a10_24gb"}}, r"config sets accelerator: pass accelerator="),
        (
            {"config": {"chunked_prefil": True}},
            r"unknown keys \['chunked_prefil'\].*chunked_prefill",
        ),
        ({"hf_token": "hf_literal"}, r"hf_token must come from Airflow"),
        ({"accelerator": ""}, r"accelerator='' is not valid"),
        ({"min_replicas": 3, "max_replicas": 1}, r"min_replicas \(3\) is larger than max_replicas"),
    ],
)
def test_bad_serving_settings_fail_at_parse_naming_the_field(overrides: Any, expected: str):
    with pytest.raises(PredibaseInvalidParameter, match=expected) as error:
        deploy(**overrides)
    assert "hf_literal" not in str(error.value)
    assert "[type=" not in str(error.value)


# -- batch inference -----------------------------------------------------------------------

SERVER = {
    "custom_args": ["--max-batch-size", "4"],
    "lorax_image_tag": "lorax:2025.10",
    "quantization": "fp8",
    "backend": "v3",
}


def test_every_server_setting_of_a_batch_job_reaches_the_emulator(
    wiretap: Any, client: Any, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv(
        "AIRFLOW_CONN_HUGGINGFACE", json.dumps({"conn_type": "generic", "password": "hf_b4tch"})
    )
    upload(client, "batch-in", [BATCH_ROW])
    result = batch(server_config=SERVER, hf_token=AirflowSecret.connection("huggingface")).execute(
        make_context(task_id="score")
    )
    assert result["rows"] == 1
    [sent] = wiretap.bodies("POST", "batch-inference")
    for name, value in {**SERVER, "base_model": "qwen3-8b", "hf_token": "hf_b4tch"}.items():
        assert on_wire(sent, name) == value, name


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        ({"quantization": "int4"}, r"quantization='int4' is not valid: .*'none', 'fp8'"),
        ({"backend": "v9"}, r"backend='v9' is not valid"),
        ({"lorax_image": "x"}, r"unknown keys \['lorax_image'\]; valid keys: backend"),
        ({"base_model": "other"}, r"server_config sets base_model: pass base_model="),
        ({"hf_token": "hf_x"}, r"server_config sets hf_token"),
    ],
)
def test_bad_batch_server_settings_fail_at_parse_naming_the_field(config: Any, expected: str):
    with pytest.raises(PredibaseInvalidParameter, match=expected):
        batch(server_config=config)


# -- secret references ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ({"conn_id": "hf"}, AirflowSecret.connection("hf")),
        ({"conn_id": "hf", "field": "extra.token"}, AirflowSecret.connection("hf", "extra.token")),
        ({"variable": "hf_token"}, AirflowSecret.variable("hf_token")),
    ],
)
def test_a_secret_reference_can_be_written_as_a_mapping(value: Any, expected: AirflowSecret):
    assert AirflowSecret.parse(value, "hf_token") == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("hf_abc", r"hf_token must come from Airflow"),
        ("{{ var.value.hf_token }}", r"hf_token must come from Airflow"),
        ({"conn_id": "hf", "field": "port"}, r"hf_token: field='port' is not a connection field"),
        ({"variable": "{{ params.key }}"}, r"plain connection ID or Variable key"),
    ],
)
def test_a_secret_that_is_not_a_reference_is_refused_without_echoing_it(value: Any, expected):
    with pytest.raises(ValueError, match=expected) as error:
        AirflowSecret.parse(value, "hf_token")
    assert "hf_abc" not in str(error.value)


def test_a_missing_secret_names_the_field_and_where_it_was_looked_for(emulator: Any):
    op = deploy(hf_token=AirflowSecret.variable("no_such_variable"))
    with pytest.raises(PredibaseInvalidParameter, match=r"hf_token: the Airflow Variable "):
        op.execute(make_context())
    op = deploy(hf_token=AirflowSecret.connection("no_such_connection"))
    with pytest.raises(PredibaseInvalidParameter, match=r"hf_token: cannot read Airflow conn"):
        op.execute(make_context())
    assert emulator.admin.state()["deployments"] == []


def test_a_connection_extra_can_hold_the_token(
    wiretap: Any, client: Any, monkeypatch: pytest.MonkeyPatch
):
    conn = {"conn_type": "generic", "extra": {"token": "hf_from_extra_77"}}
    monkeypatch.setenv("AIRFLOW_CONN_HF_EXTRA", json.dumps(conn))
    deploy(hf_token=AirflowSecret.connection("hf_extra", field="extra.token")).execute(
        make_context()
    )
    assert on_wire(wiretap.bodies("POST", "/deployments")[0], "hf_token") == "hf_from_extra_77"
