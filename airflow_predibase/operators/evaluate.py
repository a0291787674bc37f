"""EvaluateAdapterOperator: a champion/challenger quality gate.

Scores a candidate adapter and a baseline on the same evaluation examples through a
deployment's serving API, and decides whether the candidate may replace the champion.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Sequence
from typing import Any

from airflow.providers.common.compat.sdk import (
    AirflowFailException,
    AirflowSkipException,
    BaseOperator,
)

from airflow_predibase import evaluation
from airflow_predibase.exceptions import PredibaseInvalidParameter
from airflow_predibase.operators._base import check_choice, coerce_list, is_templated

#: What `on_fail` accepts.
ON_FAIL = ("fail", "skip")
#: `baseline` values that are not an adapter ID.
BASELINES = ("champion", "base")
#: The serving API scores one example per request: above this many, use batch inference.
MAX_SERVING_EXAMPLES = 1000
#: XCom key of the full evaluation (also pushed when the gate fails or skips).
XCOM_EVALUATION = "evaluation"


class PredibaseGateFailed(AirflowFailException):
    """The candidate did not pass the quality gate (not retried: scoring again gives the
    same answer). The message names the metric, the scores and the thresholds."""


class EvaluateAdapterOperator(BaseOperator):
    """Score `adapter` against a baseline on one evaluation dataset and gate on the result.

    Both are asked every prompt through `deployment`'s serving API (chat completions,
    temperature 0), and their answers are compared with the expected completions.

    Returns (and pushes as XCom ``evaluation``, also on a failed gate)::

        {"passed": bool, "metric": "accuracy", "candidate": {"adapter", "scores"},
         "baseline": {"kind": "champion"|"base"|"adapter", "adapter", "scores"},
         "margin": float | None, "min_score", "min_margin", "reasons": [...],
         "counts": {"examples", "candidate_correct", "baseline_correct"}, "results_path"}

    ``scores`` holds every metric of `metrics` plus `metric`; ``margin`` is candidate minus
    baseline on `metric`; ``*_correct`` count answers equal to the reference after
    normalization (what ``accuracy`` measures).

    :param adapter: the candidate, ``"<repo>/<version>"`` (templated: e.g. the XCom of
        FinetuneOperator).
    :param deployment: a deployment serving the adapters' base model (templated).
    :param dataset: the evaluation examples: a local path, a URL Airflow's object storage
        can open (``s3://...``), or an ``ObjectStoragePath``; JSONL, JSON, CSV or Parquet
        with ``prompt`` and ``completion`` columns. Rows with ``split: train`` are skipped.
        At most 1,000 examples (the serving API is asked once per example and model).
    :param baseline: ``"champion"`` (default: the adapter `deployment` serves as champion,
        as PromoteAdapterOperator records it; the base model when it has none yet; the
        champion it replaced when the candidate already is the champion, on a re-run),
        ``"base"`` (the base model), or an adapter ID.
    :param metric: what the gate decides on: ``"exact_match"``, ``"accuracy"`` (case,
        spacing and trailing punctuation ignored), ``"label_f1"`` (macro F1 over the
        reference labels), or a function by import path ``"pkg.module:fn"`` called with
        ``(predictions, references)`` and returning a float.
    :param metrics: further metrics to report (default the three built-in ones).
    :param min_score: the candidate's `metric` must be at least this (None: no floor).
    :param min_margin: the candidate's `metric` minus the baseline's must be at least this
        (None: no comparison; 0.0: not worse; a small positive number: clearly better).
    :param on_fail: ``"fail"`` (the task fails with PredibaseGateFailed, not retried) or
        ``"skip"`` (the task and what depends on it are skipped, e.g. the promotion).
    :param results_path: where to write one JSONL row per example (prompt, reference,
        candidate and baseline output, and whether each was right): a local path, a URL
        or an ``ObjectStoragePath`` (templated). None writes nothing.
    :param max_new_tokens: tokens each answer may have.
    :param predibase_conn_id: Airflow connection of type ``predibase``.
    """

    template_fields: Sequence[str] = (
        "adapter",
        "deployment",
        "dataset",
        "baseline",
        "results_path",
    )
    ui_color = "#e8e3ff"

    def __init__(
        self,
        *,
        adapter: str,
        deployment: str,
        dataset: Any,
        baseline: str = "champion",
        metric: str = "accuracy",
        metrics: Sequence[str] | None = None,
        min_score: float | None = None,
        min_margin: float | None = 0.0,
        on_fail: str = "fail",
        results_path: Any = None,
        max_new_tokens: int = 64,
        predibase_conn_id: str = "predibase_default",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        try:
            check_choice("on_fail", on_fail, ON_FAIL)
            for name in [metric, *(coerce_list(metrics, "metrics") or [])]:
                evaluation.metric_function(name)
            for field, value in (("min_score", min_score), ("min_margin", min_margin)):
                if value is not None and not isinstance(value, int | float):
                    raise ValueError(f"{field} must be a number or None, got {value!r}")
            if int(max_new_tokens) < 1:
                raise ValueError(f"max_new_tokens must be at least 1, got {max_new_tokens!r}")
            if not adapter:
                raise ValueError("adapter must be given ('<repo>/<version>')")
            if not deployment:
                raise ValueError("deployment must be given (the deployment that serves)")
            self._check_baseline(baseline)
        except ValueError as error:
            raise PredibaseInvalidParameter(f"{self.task_id}: {error}") from None
        self.adapter = adapter
        self.deployment = deployment
        self.dataset = dataset
        self.baseline = baseline
        self.metric = metric
        self.metrics = list(metrics) if metrics is not None else list(evaluation.METRICS)
        self.min_score = min_score
        self.min_margin = min_margin
        self.on_fail = on_fail
        self.results_path = results_path
        self.max_new_tokens = int(max_new_tokens)
        self.predibase_conn_id = predibase_conn_id

    @staticmethod
    def _check_baseline(baseline: str) -> None:
        if is_templated(baseline) or baseline in BASELINES:
            return
        repo, _, number = str(baseline).rpartition("/")
        if not repo or not (number.isascii() and number.isdigit()):
            raise ValueError(
                f"baseline={baseline!r} is not valid; choose one of: champion, base, or an "
                "adapter ID '<repo>/<version>'"
            )

    # -- running ------------------------------------------------------------------------

    def execute(self, context: Any) -> Any:
        from airflow_predibase.hooks.predibase import PredibaseHook
        from airflow_predibase.operators._dataset_files import storage_path
        from airflow_predibase.operators.promote import split_adapter_id

        try:
            split_adapter_id(str(self.adapter), "adapter")
            self._check_baseline(self.baseline)
            examples = evaluation.read_examples(storage_path(self.dataset), str(self.dataset))
        except ValueError as error:
            raise PredibaseInvalidParameter(f"{self.task_id}: {error}") from None
        if len(examples) > MAX_SERVING_EXAMPLES:
            raise PredibaseInvalidParameter(
                f"{self.task_id}: {len(examples)} examples; the serving API scores at most "
                f"{MAX_SERVING_EXAMPLES} (score larger sets with BatchInferenceOperator and "
                "airflow_predibase.evaluation)"
            )
        client = PredibaseHook(predibase_conn_id=self.predibase_conn_id).get_client()
        baseline_kind, baseline_model = self._resolve_baseline(client)
        self.log.info(
            "scoring %s against %s (%s) on %d examples via %s",
            self.adapter,
            baseline_model or "the base model",
            baseline_kind,
            len(examples),
            self.deployment,
        )
        candidate_out = self._answers(client, str(self.adapter), examples)
        baseline_out = self._answers(client, baseline_model, examples)
        result = self._decide(examples, candidate_out, baseline_out, baseline_kind, baseline_model)
        if self.results_path:
            result["results_path"] = self._write_rows(examples, candidate_out, baseline_out)
        context["ti"].xcom_push(key=XCOM_EVALUATION, value=result)
        self.log.info(
            "%s %s: candidate %s=%.4f, baseline %.4f (margin %s)%s",
            self.adapter,
            "passed" if result["passed"] else "did not pass",
            self.metric,
            result["candidate"]["scores"][self.metric],
            result["baseline"]["scores"][self.metric],
            result["margin"],
            "" if result["passed"] else ": " + "; ".join(result["reasons"]),
        )
        if not result["passed"]:
            message = f"{self.task_id}: {self.adapter} did not pass: " + "; ".join(
                result["reasons"]
            )
            if self.on_fail == "skip":
                raise AirflowSkipException(message)
            raise PredibaseGateFailed(message)
        return result

    def _resolve_baseline(self, client: Any) -> tuple[str, str]:
        """(kind, model ID) of the baseline; ``""`` is the base model."""
        if self.baseline == "base":
            return "base", ""
        if self.baseline == "champion":
            from airflow_predibase.operators.promote import champion_of

            record = champion_of(client, str(self.deployment))
            champion = record.champion
            if champion == str(self.adapter):
                # A re-run after this candidate was promoted: judge it against the champion
                # it replaced, so the decision does not change.
                self.log.info(
                    "%s is already the champion: comparing with the one it replaced (%s)",
                    champion,
                    record.previous or "the base model",
                )
                champion = record.previous
            if champion is None:
                self.log.info(
                    "%s has no champion yet: the baseline is the base model", self.deployment
                )
                return "base", ""
            return "champion", champion
        return "adapter", str(self.baseline)

    def _answers(self, client: Any, model: str, examples: list[dict[str, str]]) -> list[str]:
        from airflow_predibase.client.models import ChatCompletionRequest, ChatMessage

        answers = []
        started = time.monotonic()
        for example in examples:
            request = ChatCompletionRequest(
                model=model,
                messages=[ChatMessage(role="user", content=example["prompt"])],
                max_tokens=self.max_new_tokens,
                temperature=0.0,
            )
            reply = client.chat_completion(str(self.deployment), request)
            content = reply.choices[0].message.content if reply.choices else ""
            answers.append(content if isinstance(content, str) else "")
        self.log.info(
            "%d answers from %s in %.1f s",
            len(answers),
            model or "the base model",
            time.monotonic() - started,
        )
        return answers

    def _scores(self, predictions: list[str], references: list[str]) -> dict[str, float]:
        names = list(dict.fromkeys([*self.metrics, self.metric]))
        return {name: evaluation.score(name, predictions, references) for name in names}

    def _decide(
        self,
        examples: list[dict[str, str]],
        candidate_out: list[str],
        baseline_out: list[str],
        baseline_kind: str,
        baseline_model: str,
    ) -> dict[str, Any]:
        references = [e["completion"] for e in examples]
        candidate = self._scores(candidate_out, references)
        baseline = self._scores(baseline_out, references)
        margin = round(candidate[self.metric] - baseline[self.metric], 10)
        reasons = []
        if self.min_score is not None and candidate[self.metric] < self.min_score:
            reasons.append(
                f"{self.metric} {candidate[self.metric]:.4f} is below min_score {self.min_score}"
            )
        if self.min_margin is not None and margin < self.min_margin:
            reasons.append(
                f"{self.metric} {candidate[self.metric]:.4f} is {margin:+.4f} against the "
                f"{baseline_kind} ({baseline_model or 'base model'}: "
                f"{baseline[self.metric]:.4f}); min_margin is {self.min_margin}"
            )

        def correct(outputs: list[str]) -> int:
            return sum(
                evaluation.normalize(o) == evaluation.normalize(r)
                for o, r in zip(outputs, references, strict=True)
            )

        return {
            "passed": not reasons,
            "metric": self.metric,
            "candidate": {"adapter": str(self.adapter), "scores": candidate},
            "baseline": {
                "kind": baseline_kind,
                "adapter": baseline_model or None,
                "scores": baseline,
            },
            "margin": margin,
            "min_score": self.min_score,
            "min_margin": self.min_margin,
            "reasons": reasons,
            "counts": {
                "examples": len(examples),
                "candidate_correct": correct(candidate_out),
                "baseline_correct": correct(baseline_out),
            },
            "results_path": None,
        }

    def _write_rows(
        self, examples: list[dict[str, str]], candidate_out: list[str], baseline_out: list[str]
    ) -> str:
        from airflow_predibase.operators._dataset_files import storage_path

        lines = []
        for example, cand, base in zip(examples, candidate_out, baseline_out, strict=True):
            reference = example["completion"]
            lines.append(
                json.dumps(
                    {
                        "prompt": example["prompt"],
                        "reference": reference,
                        "candidate": cand,
                        "baseline": base,
                        "candidate_correct": evaluation.normalize(cand)
                        == evaluation.normalize(reference),
                        "baseline_correct": evaluation.normalize(base)
                        == evaluation.normalize(reference),
                    }
                )
            )
        target = storage_path(self.results_path)
        # Object stores have no directories to make.
        with contextlib.suppress(OSError, NotImplementedError):
            target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(("\n".join(lines) + "\n").encode())
        self.log.info("wrote %d rows to %s", len(lines), target)
        return str(self.results_path)
