"""EvaluateAdapterOperator: a candidate against a baseline on the real emulator, through a
deployment that serves; the gate's decision, skip vs fail, and the row-level results."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from airflow.providers.common.compat.sdk import AirflowSkipException

from airflow_predibase import evaluation
from airflow_predibase.exceptions import PredibaseInvalidParameter
from airflow_predibase.operators.evaluate import EvaluateAdapterOperator, PredibaseGateFailed
from airflow_predibase.operators.promote import PromoteAdapterOperator
from tests.operators.champion_kit import TICKETS, WRONG, deploy, train, write_eval
from tests.taskkit import make_context


def evaluate(**overrides: Any) -> EvaluateAdapterOperator:
    params: dict[str, Any] = {"task_id": "evaluate", "deployment": "router"}
    params.update(overrides)
    return EvaluateAdapterOperator(**params)


def test_a_trained_candidate_beats_the_base_model_and_writes_every_row(
    emulator: Any, client: Any, tmp_path: Path
):
    good = train(client, "good", TICKETS)
    deploy()
    results = tmp_path / "out" / "rows.jsonl"
    context = make_context()
    op = evaluate(
        adapter=good,
        dataset=str(write_eval(tmp_path / "eval.jsonl")),
        min_score=0.9,
        results_path=str(results),
    )
    result = op.execute(context)
    # No champion yet: the base model is the baseline.
    assert result["passed"] is True
    assert result["baseline"] == {
        "kind": "base",
        "adapter": None,
        "scores": {"exact_match": 0.0, "accuracy": 0.0, "label_f1": 0.0},
    }
    assert result["candidate"]["scores"] == {"exact_match": 1.0, "accuracy": 1.0, "label_f1": 1.0}
    assert result["margin"] == 1.0
    assert result["counts"] == {"examples": 6, "candidate_correct": 6, "baseline_correct": 0}
    assert context["ti"].xcoms["evaluation"] == result
    rows = [json.loads(line) for line in results.read_text().splitlines()]
    assert len(rows) == 6
    assert rows[0]["prompt"] == TICKETS[0]["prompt"]
    assert (rows[0]["reference"], rows[0]["candidate"]) == ("billing", "billing")
    assert rows[0]["baseline"].startswith("I am qwen3-8b")
    assert result["results_path"] == str(results)


def test_a_worse_candidate_against_the_champion_fails_the_task(
    emulator: Any, client: Any, tmp_path: Path
):
    champion = train(client, "good", TICKETS)
    candidate = train(client, "bad", WRONG)
    deploy()
    PromoteAdapterOperator(
        task_id="promote", deployment="router", adapter=champion, poll_interval=0.05,
        deferrable=False,
    ).execute(make_context(task_id="promote"))  # fmt: skip
    context = make_context()
    op = evaluate(adapter=candidate, dataset=str(write_eval(tmp_path / "eval.jsonl")))
    with pytest.raises(
        PredibaseGateFailed, match=r"accuracy 0.0000 is -1.0000 against the champion"
    ):
        op.execute(context)
    pushed = context["ti"].xcoms["evaluation"]
    assert pushed["passed"] is False
    assert pushed["baseline"]["kind"] == "champion"
    assert pushed["baseline"]["adapter"] == champion
    assert pushed["counts"]["baseline_correct"] == 6


def test_on_fail_skip_skips_downstream_and_still_reports(
    emulator: Any, client: Any, tmp_path: Path
):
    candidate = train(client, "bad", WRONG)
    deploy()
    context = make_context()
    op = evaluate(
        adapter=candidate,
        dataset=str(write_eval(tmp_path / "eval.jsonl")),
        baseline="base",
        min_score=0.5,
        on_fail="skip",
    )
    with pytest.raises(AirflowSkipException, match=r"below min_score 0\.5"):
        op.execute(context)
    assert context["ti"].xcoms["evaluation"]["reasons"] == [
        "accuracy 0.0000 is below min_score 0.5"
    ]


def test_an_explicit_adapter_baseline_and_a_user_metric(emulator: Any, client: Any, tmp_path: Path):
    good = train(client, "good", TICKETS)
    bad = train(client, "bad", WRONG)
    deploy()
    result = evaluate(
        adapter=good,
        baseline=bad,
        dataset=str(write_eval(tmp_path / "eval.jsonl")),
        metric="tests.operators.test_evaluate:first_letter",
        metrics=["accuracy"],
        min_margin=0.5,
    ).execute(make_context())
    assert result["baseline"]["kind"] == "adapter"
    assert result["baseline"]["adapter"] == bad
    assert set(result["candidate"]["scores"]) == {
        "accuracy",
        "tests.operators.test_evaluate:first_letter",
    }
    assert result["passed"] is True


def first_letter(predictions: list[str], references: list[str]) -> float:
    """A user metric: the share of answers that start like the reference."""
    return sum(p[:1] == r[:1] for p, r in zip(predictions, references, strict=True)) / len(
        references
    )


def test_csv_datasets_are_read_too(emulator: Any, client: Any, tmp_path: Path):
    good = train(client, "good", TICKETS)
    deploy()
    csv = tmp_path / "eval.csv"
    csv.write_text(
        "prompt,completion\n" + "".join(f'"{t["prompt"]}",{t["completion"]}\n' for t in TICKETS)
    )
    result = evaluate(adapter=good, dataset=str(csv), baseline="base").execute(make_context())
    assert result["counts"]["examples"] == 6
    assert result["candidate"]["scores"]["accuracy"] == 1.0


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"on_fail": "warn"}, r"on_fail='warn' is not valid; choose one of: fail, skip"),
        ({"metric": "bleu"}, r"metric 'bleu' is not valid; choose one of: exact_match, accuracy"),
        ({"metric": "nowhere.mod:fn"}, r"cannot import 'nowhere.mod'"),
        ({"baseline": "yesterday"}, r"baseline='yesterday' is not valid; choose one of: champion"),
        ({"min_score": "high"}, r"min_score must be a number"),
        ({"adapter": ""}, r"adapter must be given"),
    ],
)
def test_bad_parameters_name_the_field_and_the_choices(overrides: dict[str, Any], expected: str):
    params = {"adapter": "router/1", "dataset": "eval.jsonl", **overrides}
    with pytest.raises(PredibaseInvalidParameter, match=expected):
        evaluate(**params)


def test_a_dataset_without_completions_names_the_row(emulator: Any, tmp_path: Path):
    bad = tmp_path / "eval.jsonl"
    bad.write_text(json.dumps({"prompt": "hi"}) + "\n")
    with pytest.raises(PredibaseInvalidParameter, match=r"row 1 has no completion"):
        evaluate(adapter="router/1", dataset=str(bad)).execute(make_context())


def test_metrics():
    refs = ["billing", "shipping", "account", "billing"]
    preds = [" Billing.", "shipping", "billing", "billing"]
    assert evaluation.exact_match(preds, refs) == 0.5
    assert evaluation.accuracy_score(preds, refs) == 0.75
    # billing: tp 2, fp 1 -> 0.8; shipping: 1.0; account: 0.0
    assert evaluation.label_f1(preds, refs) == pytest.approx((0.8 + 1.0 + 0.0) / 3)
    with pytest.raises(ValueError, match="2 predictions for 4 references"):
        evaluation.accuracy_score(preds[:2], refs)
    assert evaluation.exact_match([], []) == 0.0
    with pytest.raises(TypeError, match="must return a float"):
        evaluation.score(lambda p, r: "good", preds, refs)


def test_a_re_run_after_promotion_compares_with_the_champion_it_replaced(
    emulator: Any, client: Any, tmp_path: Path
):
    old = train(client, "bad", WRONG)
    new = train(client, "good", TICKETS)
    deploy()
    for adapter in (old, new):
        PromoteAdapterOperator(
            task_id="promote", deployment="router", adapter=adapter, poll_interval=0.05
        ).execute(make_context(task_id="promote"))
    result = evaluate(
        adapter=new, dataset=str(write_eval(tmp_path / "eval.jsonl")), min_margin=0.5
    ).execute(make_context())
    assert result["passed"] is True
    assert (result["baseline"]["kind"], result["baseline"]["adapter"]) == ("champion", old)


def test_a_rendered_adapter_that_is_no_adapter_id_is_named(emulator: Any, tmp_path: Path):
    op = evaluate(adapter="{{ params.adapter }}", dataset=str(write_eval(tmp_path / "e.jsonl")))
    op.adapter = "router"  # as Jinja renders it
    with pytest.raises(PredibaseInvalidParameter, match=r"adapter='router' is not an adapter ID"):
        op.execute(make_context())
