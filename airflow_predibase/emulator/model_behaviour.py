"""What the emulated models say: deterministic, so tests can assert on it.

- A base model answers every prompt with the same sentence. It knows nothing.
- An adapter has "learned" its training rows: a prompt it was trained on gets that row's
  completion; an unseen prompt gets the completion of the most similar training prompt
  (Jaccard similarity of lower-cased word sets). On a classification set an adapter
  therefore beats its base model by a wide, measurable margin, and generalises as far as
  word overlap does.

Tokens are whitespace-separated words, each carrying the whitespace that follows it, so
joining the tokens gives back the exact text and every count agrees with `len(text.split())`.
"""

from __future__ import annotations

import re
import zlib
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

_TOKEN = re.compile(r"\s*\S+\s*")
_WORD = re.compile(r"[a-z0-9]+")
FinishReason = str  # "length", "eos_token" or "stop_sequence"


def tokens_of(text: str) -> list[str]:
    """`text` cut into tokens whose concatenation is `text` (leading space on the first)."""
    return _TOKEN.findall(text)


def count_tokens(text: str) -> int:
    """Whitespace token count, the unit of every usage figure."""
    return len(text.split())


def token_id(token: str) -> int:
    """A stable fake vocabulary ID."""
    return 3 + zlib.crc32(token.strip().encode()) % 32_000


def token_logprob(token: str) -> float:
    """A stable fake log probability in (-1, 0]."""
    return -round((zlib.crc32(token.encode()) % 1000) / 1000, 3)


def base_answer(base_model: str) -> str:
    """The base model's one answer."""
    return f"I am {base_model}, a base model without fine-tuning."


def _words(text: str) -> frozenset[str]:
    return frozenset(_WORD.findall(text.lower()))


class AdapterMemory:
    """An adapter's training rows, indexed for nearest-prompt lookup."""

    def __init__(self, pairs: Sequence[tuple[str, str]]) -> None:
        self._exact: dict[str, str] = {}
        self._prompts: list[frozenset[str]] = []
        self._answers: list[str] = []
        self._postings: dict[str, list[int]] = {}
        for prompt, completion in pairs:
            self._exact.setdefault(prompt.strip(), completion)
            words = _words(prompt)
            index = len(self._prompts)
            self._prompts.append(words)
            self._answers.append(completion)
            for word in words:
                self._postings.setdefault(word, []).append(index)
        counts = Counter(self._answers)
        # With no overlap at all the adapter falls back to what it saw most: its prior.
        self._prior = counts.most_common(1)[0][0] if counts else ""

    def __len__(self) -> int:
        return len(self._answers)

    def answer(self, prompt: str) -> str:
        exact = self._exact.get(prompt.strip())
        if exact is not None:
            return exact
        query = _words(prompt)
        overlap: Counter[int] = Counter()
        for word in query:
            overlap.update(self._postings.get(word, ()))
        best, best_score = -1, 0.0
        for index, shared in overlap.items():
            score = shared / (len(query) + len(self._prompts[index]) - shared)
            # Ties go to the earliest row, so the answer does not depend on dict order.
            if score > best_score or (score == best_score and index < best):
                best, best_score = index, score
        return self._answers[best] if best >= 0 else self._prior


def memory_from_rows(rows: Sequence[dict[str, Any]], task: str) -> AdapterMemory:
    """What an adapter trained for `task` on `rows` remembers."""
    if task == "continued_pretraining":
        # Asked for a continuation, it recites the training text closest to the prompt.
        texts = [str(row.get("text") or "") for row in rows]
        return AdapterMemory([(text, text) for text in texts])
    if task == "classification":
        # It learned to put a label on a text (dataset_files.TASK_COLUMNS).
        return AdapterMemory(
            [(str(row.get("text") or ""), str(row.get("label") or "")) for row in rows]
        )
    if task == "grpo":
        # GRPO learns from rewards, not completions: nothing to recite.
        return AdapterMemory([])
    return AdapterMemory(
        [(str(row.get("prompt") or ""), str(row.get("completion") or "")) for row in rows]
    )


@dataclass(frozen=True)
class Generation:
    """One generated answer, already cut to the request's limits."""

    tokens: list[str]
    finish_reason: FinishReason
    prompt_tokens: int

    @property
    def text(self) -> str:
        return "".join(self.tokens)

    @property
    def generated_tokens(self) -> int:
        return len(self.tokens)


def generate(
    answer: str, prompt: str, max_new_tokens: int | None, stop: Sequence[str] | None
) -> Generation:
    """`answer` as a model would emit it: stopped at a stop sequence or the token limit."""
    finish: FinishReason = "eos_token"
    for sequence in stop or ():
        if sequence and sequence in answer:
            answer = answer[: answer.index(sequence)]
            finish = "stop_sequence"
    tokens = tokens_of(answer)
    if max_new_tokens is not None and len(tokens) > max_new_tokens:
        tokens = tokens[:max_new_tokens]
        finish = "length"
    return Generation(tokens=tokens, finish_reason=finish, prompt_tokens=count_tokens(prompt))
