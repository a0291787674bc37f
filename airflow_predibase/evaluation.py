"""Score adapters: build batch-inference rows and compare the answers with the expected
completions (the example DAGs), and the metrics and dataset reader of the quality gate
(`EvaluateAdapterOperator`): exact match, accuracy, macro label F1, or a user function.

Used by the example DAGs; handy in your own. No Airflow and no I/O beyond the files named.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, cast

from airflow_predibase.dataset_files import (
    EXTENSIONS,
    SPLIT_COLUMN,
    decode,
    detect_format,
    iter_rows,
    json_lines,
)


def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    """Every row of a JSONL file; a line that is not a JSON object raises a ValueError
    naming the file and the line."""
    where = str(path)
    return [row for _, row in json_lines(decode(Path(path).read_bytes(), where), where)]


def write_jsonl(path: str | Path, rows: Iterable[Mapping[str, Any]]) -> Path:
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    with target.open("w") as fh:
        for row in rows:
            fh.write(json.dumps(row) + "\n")
    return target


def batch_rows(
    examples: Iterable[Mapping[str, Any]],
    models: Mapping[str, str],
    *,
    max_tokens: int = 16,
    temperature: float | None = None,
) -> list[dict[str, Any]]:
    """One OpenAI-batch row per (example, model). `models` maps a label to a model ID
    (``""`` is the base model). custom_id is ``<label>-<index>``. `temperature`, when
    given, goes into each body (the quality gate asks at 0, as it does through serving)."""
    rows = []
    for index, example in enumerate(examples):
        for label, model in models.items():
            body: dict[str, Any] = {
                "model": model,
                "messages": [{"role": "user", "content": example["prompt"]}],
                "max_tokens": max_tokens,
            }
            if temperature is not None:
                body["temperature"] = temperature
            rows.append(
                {
                    "custom_id": f"{label}-{index}",
                    "method": "POST",
                    "url": "/v1/chat/completions",
                    "body": body,
                }
            )
    return rows


def _answer(row: Mapping[str, Any]) -> str | None:
    response = row.get("response") or {}
    choices = (response.get("body") or {}).get("choices") or []
    if not choices:
        return None
    content = (choices[0].get("message") or {}).get("content")
    return content.strip().lower() if isinstance(content, str) else None


def accuracy(
    examples: list[Mapping[str, Any]], results: Iterable[Mapping[str, Any]], labels: Iterable[str]
) -> dict[str, float]:
    """Exact-match accuracy per label, from batch results keyed ``<label>-<index>``."""
    by_id = {row["custom_id"]: row for row in results}
    scores = {}
    for label in labels:
        correct = 0
        for index, example in enumerate(examples):
            answer = _answer(by_id.get(f"{label}-{index}", {}))
            correct += answer == str(example["completion"]).strip().lower()
        scores[label] = correct / len(examples) if examples else 0.0
    return scores


# -- metrics for a quality gate (EvaluateAdapterOperator) ---------------------------------

#: Metric names `metric_function` knows; anything else must be ``"pkg.module:function"``.
METRICS = ("exact_match", "accuracy", "label_f1")

Metric = Callable[[Sequence[str], Sequence[str]], float]


def normalize(text: Any) -> str:
    """Lower case, inner whitespace collapsed, surrounding whitespace and trailing sentence
    punctuation removed: ``" Billing.\\n"`` and ``"billing"`` are the same answer."""
    return " ".join(str(text).split()).lower().rstrip(".!?;:,").strip()


def _check_lengths(predictions: Sequence[str], references: Sequence[str]) -> None:
    if len(predictions) != len(references):
        raise ValueError(
            f"{len(predictions)} predictions for {len(references)} references: one each"
        )


def exact_match(predictions: Sequence[str], references: Sequence[str]) -> float:
    """Share of predictions equal to their reference, byte for byte after stripping the
    surrounding whitespace. 0.0 for no examples."""
    _check_lengths(predictions, references)
    if not references:
        return 0.0
    hits = sum(
        str(p).strip() == str(r).strip() for p, r in zip(predictions, references, strict=True)
    )
    return hits / len(references)


def accuracy_score(predictions: Sequence[str], references: Sequence[str]) -> float:
    """Share of predictions equal to their reference after `normalize` (case, spacing and
    trailing punctuation do not count). 0.0 for no examples."""
    _check_lengths(predictions, references)
    if not references:
        return 0.0
    hits = sum(normalize(p) == normalize(r) for p, r in zip(predictions, references, strict=True))
    return hits / len(references)


def label_f1(predictions: Sequence[str], references: Sequence[str]) -> float:
    """Macro F1 over the labels the references use (after `normalize`). A prediction that
    is no label counts as a miss for its reference's label. 0.0 for no examples."""
    _check_lengths(predictions, references)
    labels = sorted({normalize(r) for r in references})
    if not labels:
        return 0.0
    pairs = [(normalize(p), normalize(r)) for p, r in zip(predictions, references, strict=True)]
    scores = []
    for label in labels:
        tp = sum(p == label and r == label for p, r in pairs)
        fp = sum(p == label and r != label for p, r in pairs)
        fn = sum(p != label and r == label for p, r in pairs)
        scores.append(2 * tp / (2 * tp + fp + fn) if tp else 0.0)
    return sum(scores) / len(scores)


_BUILTIN: dict[str, Metric] = {
    "exact_match": exact_match,
    "accuracy": accuracy_score,
    "label_f1": label_f1,
}


def metric_function(name: str) -> Metric:
    """The metric called `name` (one of `METRICS`), or a user function by import path
    ``"pkg.module:function"`` taking (predictions, references) and returning a float."""
    if name in _BUILTIN:
        return _BUILTIN[name]
    module_name, sep, attr = name.partition(":")
    if not sep or not module_name or not attr:
        valid = ", ".join(METRICS)
        raise ValueError(
            f"metric {name!r} is not valid; choose one of: {valid}, or an import path "
            "'package.module:function'"
        )
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise ValueError(f"metric {name!r}: cannot import {module_name!r}: {error}") from None
    function = getattr(module, attr, None)
    if not callable(function):
        raise ValueError(f"metric {name!r}: {module_name!r} has no function {attr!r}")
    return cast(Metric, function)


def score(metric: str | Metric, predictions: Sequence[str], references: Sequence[str]) -> float:
    """One metric's value as a float, with a clear error when a user function returns
    something else."""
    function = metric_function(metric) if isinstance(metric, str) else metric
    value = function(list(predictions), list(references))
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"metric {metric!r} returned {value!r}; it must return a float")
    return float(value)


def read_examples(source: Any, where: str | None = None) -> list[dict[str, str]]:
    """Evaluation examples from a JSONL, JSON, CSV (or Parquet) file with `prompt` and
    `completion` columns. `source` is a local path or anything with ``read_bytes()`` and
    a ``name`` (an Airflow ``ObjectStoragePath``). Rows of ``split: train`` are left out."""
    where = where or str(source)
    if isinstance(source, str | Path):
        content = Path(source).read_bytes()
        file_name = str(source)
    else:
        content = source.read_bytes()
        file_name = str(getattr(source, "name", None) or source)
    fmt = detect_format(file_name)
    if fmt is None:
        formats = ", ".join(EXTENSIONS)
        raise ValueError(f"evaluation dataset {where}: cannot tell its format; use {formats}")
    examples = []
    for index, row in enumerate(iter_rows(content, fmt, where)):
        if str(row.get(SPLIT_COLUMN) or "").strip().lower() == "train":
            continue
        missing = [c for c in ("prompt", "completion") if row.get(c) is None]
        if missing:
            raise ValueError(
                f"evaluation dataset {where}: row {index + 1} has no {' or '.join(missing)} "
                "(each row needs prompt and completion)"
            )
        examples.append({"prompt": str(row["prompt"]), "completion": str(row["completion"])})
    if not examples:
        raise ValueError(f"evaluation dataset {where}: no examples (rows with prompt, completion)")
    return examples
