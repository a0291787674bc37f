"""Realistic training curves for emulated fine-tuning jobs. No I/O, no clock.

A job's curve is a pure function of a seed string and its step count, so the same job
(same emulator seed, repository and version) always shows the same losses: training loss
falls exponentially with noise; validation loss, measured at each checkpoint, falls more
slowly and turns up at the end (mild over-fitting), so the best checkpoint is often not
the last. The job's `progress.train_loss` (both dialects) and production's metrics stream
messages are read from here.
"""

from __future__ import annotations

import hashlib
import math
import random
from dataclasses import dataclass

#: Checkpoints (validation evaluations) per job, at most.
CHECKPOINTS = 10
#: Tokens per training example, for `total_tokens_used`.
TOKENS_PER_EXAMPLE = 256


@dataclass(frozen=True)
class Checkpoint:
    """One evaluation, as production's metrics stream reports it."""

    number: int
    step: int
    epoch: int
    train_loss: float
    validation_loss: float


@dataclass(frozen=True)
class Curve:
    """The whole planned curve of one job."""

    train: tuple[float, ...]  # train loss after step i+1
    checkpoints: tuple[Checkpoint, ...]
    batch_size: int

    def train_loss(self, step: int) -> float | None:
        """The training loss after `step` steps; None before the first."""
        if step <= 0 or not self.train:
            return None
        return self.train[min(step, len(self.train)) - 1]

    def reached(self, step: int) -> tuple[Checkpoint, ...]:
        """The checkpoints evaluated by step `step`."""
        return tuple(c for c in self.checkpoints if c.step <= step)

    def tokens(self, step: int) -> int:
        return max(0, step) * self.batch_size * TOKENS_PER_EXAMPLE


def _rng(key: str) -> random.Random:
    return random.Random(int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big"))


def curve(key: str, total_steps: int, epochs: int, batch_size: int) -> Curve:
    """The curve for `key` (emulator seed, repository, version) over `total_steps` steps."""
    rng = _rng(key)
    total = max(1, total_steps)
    start = 2.0 + rng.uniform(0.0, 0.6)
    floor = 0.25 + rng.uniform(0.0, 0.2)
    rate = 3.0 + rng.uniform(0.0, 2.0)
    train = []
    for step in range(1, total + 1):
        f = step / total
        clean = floor + (start - floor) * math.exp(-rate * f)
        train.append(round(max(0.01, clean * (1 + rng.gauss(0.0, 0.04))), 4))
    gap = 0.08 + rng.uniform(0.0, 0.1)
    overfit = 0.15 + rng.uniform(0.0, 0.25)
    every = max(1, math.ceil(total / CHECKPOINTS))
    steps = sorted({*range(every, total + 1, every), total})
    checkpoints = []
    for number, step in enumerate(steps, start=1):
        f = step / total
        clean = floor + gap + (start - floor) * math.exp(-0.8 * rate * f) + overfit * f**3
        checkpoints.append(
            Checkpoint(
                number=number,
                step=step,
                epoch=max(1, math.ceil(epochs * f)) if epochs else 1,
                train_loss=train[step - 1],
                validation_loss=round(max(0.01, clean * (1 + rng.gauss(0.0, 0.02))), 4),
            )
        )
    return Curve(tuple(train), tuple(checkpoints), batch_size)


def best(checkpoints: tuple[Checkpoint, ...]) -> Checkpoint | None:
    """The checkpoint with the lowest validation loss (the first of equals)."""
    return min(checkpoints, key=lambda c: c.validation_loss, default=None)
