"""Lifecycles as timelines: a list of (status, duration) phases from an anchor time.

A resource's status is never stored: it is computed from its timeline and the clock. That
keeps the emulator honest (every resource passes through each phase, at the profile's
pace), makes restarts trivial (a timeline is two numbers and a list) and turns the control
API's "advance" and "force" into small edits of the anchor.

Stored form, inside a resource document: ``{"anchor": t, "phases": [[status, seconds],
...]}``; the last phase has ``None`` for its duration and lasts for ever.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

#: A pseudo-status: the resource has finished going away and must answer 404.
GONE = "__gone__"

Phase = tuple[str, float | None]
Timeline = dict[str, Any]


@dataclass(frozen=True)
class Position:
    """Where a timeline is at a given time."""

    index: int
    status: str
    started: float
    ends: float | None

    def fraction(self, now: float) -> float:
        """How far through its phase, 0.0 to 1.0 (1.0 for the open-ended last phase)."""
        if self.ends is None or self.ends <= self.started:
            return 1.0
        return min(1.0, max(0.0, (now - self.started) / (self.ends - self.started)))


def timeline(phases: Sequence[Phase], anchor: float) -> Timeline:
    """A new timeline that starts its first phase at `anchor`."""
    if not phases or phases[-1][1] is not None:
        raise ValueError("a timeline ends with an open-ended phase")
    return {"anchor": anchor, "phases": [[status, duration] for status, duration in phases]}


def locate(tl: Timeline, now: float) -> Position:
    """The phase `tl` is in at `now`."""
    start = float(tl["anchor"])
    phases = tl["phases"]
    last = len(phases) - 1
    for index, (status, duration) in enumerate(phases):
        if duration is None or index == last:
            return Position(index, status, start, None)
        end = start + float(duration)
        if now < end:
            return Position(index, status, start, end)
        start = end
    raise AssertionError("unreachable: the last phase is open-ended")


def reached(tl: Timeline, now: float) -> dict[str, float]:
    """Start time of every phase reached by `now`."""
    marks: dict[str, float] = {}
    start = float(tl["anchor"])
    for status, duration in tl["phases"]:
        if start > now:
            break
        marks.setdefault(status, start)
        if duration is None:
            break
        start += float(duration)
    return marks


def advanced(tl: Timeline, now: float) -> Timeline:
    """`tl` moved on so that its next phase starts `now` (unchanged in the last phase)."""
    position = locate(tl, now)
    if position.ends is None:
        return tl
    return {**tl, "anchor": float(tl["anchor"]) - (position.ends - now)}


def statuses(tl: Timeline) -> list[str]:
    """The statuses the timeline passes through, in order."""
    return [status for status, _ in tl["phases"]]
