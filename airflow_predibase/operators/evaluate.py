"""EvaluateAdapterOperator: a champion/challenger quality gate.

Scores a candidate adapter and a baseline on the same evaluation examples, through a
deployment's serving API or with one batch inference job per model, and decides whether
the candidate may replace the champion.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import (
    AirflowFailException,
    AirflowSkipException,
)

from airflow_predibase import evaluation
from airflow_predibase.exceptions import (
    PredibaseInvalidParameter,
    PredibaseJobFailed,
    PredibaseJobTimeout,
)
from airflow_predibase.kinds import BATCH_INFERENCE_JOB
from airflow_predibase.operators._base import (
    LOST_CREATE_WINDOW,
    PredibaseBaseOperator,
    check_choice,
    coerce_list,
    fail_fast_on_rejection,
    is_templated,
)
from airflow_predibase.operators._idempotency import Ledger

if TYPE_CHECKING:
    from airflow_predibase.client import PredibaseClient
    from airflow_predibase.client.models import BatchInferenceJob

#: What `on_fail` accepts.
ON_FAIL = ("fail", "skip")
#: `baseline` values that are not an adapter ID.
BASELINES = ("champion", "base")
#: The serving API scores one example per request: above this many, use batch inference.
MAX_SERVING_EXAMPLES = 1000
#: What `method` accepts.
METHODS = ("serving", "batch", "auto")
#: `method="auto"` scores through batch inference above this many examples (the default of
#: `batch_threshold`): up to it, the serving API answers sooner than a job starts.
BATCH_THRESHOLD = MAX_SERVING_EXAMPLES
#: XCom key of the full evaluation (also pushed when the gate fails or skips).
XCOM_EVALUATION = "evaluation"


class PredibaseGateFailed(AirflowFailException):
    """The candidate did not pass the quality gate (not retried: scoring again gives the
    same answer). The message names the metric, the scores and the thresholds."""


class _RoleLedger(Ledger):
    """The task state store entry of one role's batch job (one task runs two jobs)."""

    def __init__(self, context: Any, role: str) -> None:
        super().__init__(context)
        self._entry = f"predibase_job_id_{role}"

    def remember(self, job_id: str) -> None:
        if self._store is not None:
            self._store.set(self._entry, job_id)

    def remembered(self) -> str | None:
        return None if self._store is None else self._store.get(self._entry)

    def forget(self) -> None:
        if self._store is not None:
            self._store.delete(self._entry)


def role_key(key: str, role: str) -> str:
    """A task instance's idempotency key made one role's own (16 hex, as markers hold)."""
    return hashlib.sha256(f"{key}\x1e{role}".encode()).hexdigest()[:16]


class EvaluateAdapterOperator(PredibaseBaseOperator):
    """Score `adapter` against a baseline on one evaluation dataset and gate on the result.

    Both are asked every prompt (chat completions, temperature 0), through `deployment`'s
    serving API or in one batch inference job per model (`method`), and their answers are
    compared with the expected completions.

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
        Through the serving API at most 1,000 examples (it is asked once per example and
        model); through batch inference, as many as a dataset holds.
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
    :param method: how the answers are obtained: ``"serving"`` (the deployment's serving
        API, one request per example and model), ``"batch"`` (one batch inference job per
        model on the deployment's base model, each started exactly once per task instance:
        a retry re-attaches to it), or ``"auto"`` (default: batch above `batch_threshold`
        examples, serving up to it).
    :param batch_threshold: with ``method="auto"``, the number of examples above which
        batch inference is used (default 1,000, the serving limit; at most that).
    :param predibase_conn_id: Airflow connection of type ``predibase``.
    :param poll_interval: seconds between status checks of the batch jobs (jittered).
    :param timeout: seconds (or a timedelta) the batch path waits for its uploads and both
        jobs together; when it passes, both jobs are cancelled and the task fails
        with ``PredibaseJobTimeout`` (default 24 hours).
    :param cancel_on_kill: cancel both batch jobs when the task is killed and will not run
        again (as the other operators do; a retry re-attaches instead).

    The batch path waits on the worker (blocking), one job after the other: ``deferrable``
    is accepted and ignored.
    """

    template_fields: Sequence[str] = (
        "adapter",
        "deployment",
        "dataset",
        "baseline",
        "results_path",
    )
    ui_color = "#e8e3ff"
    kind = BATCH_INFERENCE_JOB

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
        method: str = "auto",
        batch_threshold: int = BATCH_THRESHOLD,
        predibase_conn_id: str = "predibase_default",
        **kwargs: Any,
    ) -> None:
        super().__init__(predibase_conn_id=predibase_conn_id, **kwargs)
        # Two jobs, waited on in turn: the batch path blocks (see the class docstring).
        self.deferrable = False
        try:
            check_choice("on_fail", on_fail, ON_FAIL)
            check_choice("method", method, METHODS)
            if isinstance(batch_threshold, bool) or not isinstance(batch_threshold, int):
                raise ValueError(f"batch_threshold must be an integer, got {batch_threshold!r}")
            if not 0 <= batch_threshold <= MAX_SERVING_EXAMPLES:
                raise ValueError(
                    f"batch_threshold must be between 0 and {MAX_SERVING_EXAMPLES} (the "
                    f"serving limit), got {batch_threshold}"
                )
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
        self.method = method
        self.batch_threshold = batch_threshold
        self._job_ids: list[str] = []

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

    @fail_fast_on_rejection
    def execute(self, context: Any) -> Any:
        from airflow_predibase.operators._dataset_files import storage_path
        from airflow_predibase.operators.promote import split_adapter_id

        try:
            split_adapter_id(str(self.adapter), "adapter")
            self._check_baseline(self.baseline)
            examples = evaluation.read_examples(storage_path(self.dataset), str(self.dataset))
        except ValueError as error:
            raise PredibaseInvalidParameter(f"{self.task_id}: {error}") from None
        method = self._method(len(examples))
        client = self.client
        baseline_kind, baseline_model = self._resolve_baseline(client)
        self.log.info(
            "scoring %s against %s (%s) on %d examples via %s (%s)",
            self.adapter,
            baseline_model or "the base model",
            baseline_kind,
            len(examples),
            self.deployment,
            "batch inference" if method == "batch" else "the serving API",
        )
        if method == "batch":
            candidate_out, baseline_out = self._batch_answers(
                context,
                client,
                {"candidate": str(self.adapter), "baseline": baseline_model},
                examples,
            )
        else:
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

    def _method(self, examples: int) -> str:
        """``serving`` or ``batch`` for this many examples, from `method`."""
        method = self.method
        if method == "auto":
            method = "batch" if examples > self.batch_threshold else "serving"
            self.log.info(
                "method=auto: %d examples, batch_threshold %d: %s",
                examples,
                self.batch_threshold,
                method,
            )
        if method == "serving" and examples > MAX_SERVING_EXAMPLES:
            raise PredibaseInvalidParameter(
                f"{self.task_id}: {examples} examples; the serving API scores at most "
                f"{MAX_SERVING_EXAMPLES}: use method='batch' (or 'auto')"
            )
        return method

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

    # -- batch inference ------------------------------------------------------------------

    def _batch_answers(
        self,
        context: Any,
        client: PredibaseClient,
        models: dict[str, str],
        examples: list[dict[str, str]],
    ) -> tuple[list[str], list[str]]:
        """Both models' answers from one batch inference job each: both jobs are started
        (or re-attached to) first, then waited on in turn, so they run side by side."""
        deployment = client.get_deployment(str(self.deployment))
        if not deployment.base_model:
            raise PredibaseInvalidParameter(
                f"{self.task_id}: deployment {self.deployment!r} does not report its base "
                "model, which batch inference needs: use method='serving'"
            )
        deadline = self._deadline()
        self._job_ids = []
        jobs: dict[str, tuple[BatchInferenceJob, list[str]]] = {}
        for role, model in models.items():
            rows = evaluation.batch_rows(
                examples, {role: model}, max_tokens=self.max_new_tokens, temperature=0.0
            )
            dataset = self._upload_rows(client, rows, deadline)
            job = self._start_job(context, role, deployment.base_model, dataset)
            jobs[role] = (job, [str(row["custom_id"]) for row in rows])
        answers = [self._job_answers(client, role, *jobs[role], deadline) for role in models]
        return answers[0], answers[1]

    def _upload_rows(
        self, client: PredibaseClient, rows: list[dict[str, Any]], deadline: float | None
    ) -> str:
        """A connected dataset holding `rows`. Its name is its content's fingerprint, so a
        retry, or another gate asking the same prompts of the same model, reuses it
        (Predibase cannot delete a dataset)."""
        from airflow_predibase.client.errors import ConflictError, OutcomeUnknownError
        from airflow_predibase.kinds import DATASET
        from airflow_predibase.operators._dataset_files import fingerprint
        from airflow_predibase.operators.datasets import _get, fingerprint_of

        content = "".join(json.dumps(row, sort_keys=True) + "\n" for row in rows).encode()
        digest = fingerprint(content)
        name = f"evaluation-{digest}"
        dataset = _get(client, name)
        if dataset is None:
            self.log.info("uploading %d batch rows as dataset %s", len(rows), name)
            try:
                dataset = client.upload_dataset(
                    name, content, f"{name}.jsonl", description=f"[sha256:{digest}]"
                )
            except (ConflictError, OutcomeUnknownError):
                # A lost answer, or another try uploading the same content: read it back.
                dataset = _get(client, name)
                if dataset is None:
                    raise
        if fingerprint_of(dataset) not in (digest, None):
            raise PredibaseInvalidParameter(
                f"{self.task_id}: dataset {name!r} holds other content "
                f"(sha256 {fingerprint_of(dataset)}): it was not made by this operator"
            )
        event = self._wait_for(DATASET, dataset, name, deadline)
        if event.status == "timeout":
            self._cancel_jobs(except_id=None)
            raise PredibaseJobTimeout(
                event.message, resource_id=name, remote_status=event.remote_status
            )
        if event.status != "success":
            raise PredibaseJobFailed(
                event.message, resource_id=name, remote_status=event.remote_status
            )
        return name

    def _wait_for(self, kind: Any, current: Any, resource_id: str, deadline: float | None) -> Any:
        from airflow_predibase.waiting.blocking import wait_blocking
        from airflow_predibase.waiting.events import JobEvent
        from airflow_predibase.waiting.waiter import PollPolicy, Waiter

        waiter = Waiter(kind, resource_id, PollPolicy(interval=self.poll_interval), deadline)
        step = waiter.on_resource(current, time.time())
        if isinstance(step, JobEvent):
            return step
        return wait_blocking(self.client, waiter, log=self.log)

    def _start_job(
        self, context: Any, role: str, base_model: str, dataset: str
    ) -> BatchInferenceJob:
        """This task instance's batch job for `role`, started exactly once: the same rules
        as BatchInferenceOperator (docs/idempotency.md), under a key of the role's own."""
        from airflow_predibase.client.models import BatchInferenceJobRequest
        from airflow_predibase.operators._idempotency import (
            JobCalls,
            identity,
            installation_id,
            resolve_job,
        )

        client = self.client
        request = BatchInferenceJobRequest(
            base_model=base_model,
            dataset=dataset,
            description=f"{self.task_id}: {role} of {self.adapter}",
        )
        who = identity(context, installation_id(self.log), request.to_body())
        who = dataclasses.replace(
            who, key=role_key(who.key, role), legacy_key=role_key(who.legacy_key, role)
        )
        ledger = _RoleLedger(context, role)
        # As BatchInferenceOperator's `_run_job` passes them (the job models are typed loosely
        # against the idempotency protocol).
        calls: JobCalls[Any] = JobCalls(
            list_jobs=client.list_batch_inference_jobs,
            get_job=client.get_batch_inference_job,
            create=lambda text: client.create_batch_inference_job(
                request.model_copy(update={"description": text})
            ),
        )
        resolution = resolve_job(
            who=who,
            ledger=ledger,
            calls=calls,
            description=request.description,
            # Scoring the same prompts with the same models again gives the same answers.
            rerun_on_clear=False,
            lost_create_window=LOST_CREATE_WINDOW,
            log=self.log,
        )
        job: BatchInferenceJob = resolution.job
        ledger.remember(job.id)
        self._job_ids.append(job.id)
        context["ti"].xcom_push(key=f"job_id_{role}", value=job.id)
        self._publish(context, self.kind, job.id)
        self.log.info(
            "%s batch job %s %s (generation %d)",
            role,
            job.id,
            resolution.action,
            resolution.generation,
        )
        return job

    def _job_answers(
        self,
        client: PredibaseClient,
        role: str,
        job: BatchInferenceJob,
        custom_ids: list[str],
        deadline: float | None,
    ) -> list[str]:
        """The answers of `job` in the order of `custom_ids`, once every row has exactly one
        result (BatchInferenceOperator's reconciliation); a row that failed fails the task."""
        from airflow_predibase.client.models import BatchInferenceJob
        from airflow_predibase.operators.batch_inference import reconcile, row_failed

        self._active_id = job.id
        event = self._wait_for(self.kind, job, job.id, deadline)
        if event.status == "timeout":  # the one waited on is cancelled by _raise_for_event
            self._cancel_jobs(except_id=job.id)
        self._raise_for_event(event)
        done = BatchInferenceJob.model_validate(event.resource or {"id": job.id})
        self._check_own(done, event)
        ordered, counts = reconcile(
            client.download_batch_results(done.id),
            job_id=done.id,
            total_rows=done.total_rows,
            expected_ids=custom_ids,
        )
        if counts.failed:
            failed = [row.custom_id for row in ordered if row_failed(row)]
            raise PredibaseJobFailed(
                f"{self.task_id}: {counts.failed} of {counts.rows} rows of the {role}'s batch "
                f"job {done.id} came back with an error (e.g. {', '.join(failed[:5])}): "
                "every example needs an answer to be scored",
                resource_id=done.id,
                remote_status="completed",
            )
        by_id = {row.custom_id: row.text or "" for row in ordered}
        self.log.info("%d answers of the %s from batch job %s", len(by_id), role, done.id)
        return [by_id[custom_id] for custom_id in custom_ids]

    def _cancel_jobs(self, *, except_id: str | None) -> None:
        """The timeout passed: no job of this try is waited on any more."""
        for job_id in self._job_ids:
            if job_id != except_id:
                self._cancel(job_id, reason="timeout")

    def on_kill(self) -> None:
        """Both batch jobs follow the kill rule of the other operators."""
        for job_id in self._job_ids:
            self._active_id = job_id
            super().on_kill()

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
