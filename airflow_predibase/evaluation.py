"""Score an adapter against its base model with batch inference: build the input rows,
then compare the answers with the expected completions.

Used by the example DAGs; handy in your own. No Airflow and no I/O beyond the files named.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from airflow_predibase.dataset_files import decode, json_lines


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
) -> list[dict[str, Any]]:
    """One OpenAI-batch row per (example, model). `models` maps a label to a model ID
    (``""`` is the base model). custom_id is ``<label>-<index>``."""
    rows = []
    for index, example in enumerate(examples):
        for label, model in models.items():
            rows.append(
                {
                    "custom_id": f"{label}-{index}",
                    "method": "POST",
                    "url": "/v1/chat/completions",
                    "body": {
                        "model": model,
                        "messages": [{"role": "user", "content": example["prompt"]}],
                        "max_tokens": max_tokens,
                    },
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
