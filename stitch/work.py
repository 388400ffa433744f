"""Counting a stage's generator work, so schedules compare by what they cost on any hardware (issue #13).

A *step* is one image's pass through a generator being tuned: forward, backward and the optimiser update. A
*forward* is one image's pass without backward (renders, the untuned generator's reference images, a stitching
render that already matches); a batch of 16 renders counts 16.
Every tuning or rendering stage stores ``{"generator_steps": …, "generator_forwards": …, "shared_by_edits": …}``
under ``work`` in its stats; ``shared_by_edits`` marks work done once for all of a video's edits (PTI, the
per-frame PTI baseline), which the tables divide over the edits.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping


def work(steps: int, forwards: int, shared_by_edits: bool = False) -> dict:
    """One stage's work record."""
    return {"generator_steps": int(steps), "generator_forwards": int(forwards), "shared_by_edits": bool(shared_by_edits)}


def work_of(frame_stats: Iterable[Mapping], shared_by_edits: bool = False) -> dict:
    """The sum of per-frame ``steps`` / ``forwards`` records."""
    steps = forwards = 0
    for s in frame_stats:
        steps += int(s.get("steps", 0))
        forwards += int(s.get("forwards", 0))
    return work(steps, forwards, shared_by_edits)


def sum_work(records: Iterable[Mapping]) -> dict:
    """The sum of work records of one kind (e.g. PTI of every face track)."""
    records = list(records)
    return work(sum(r["generator_steps"] for r in records), sum(r["generator_forwards"] for r in records),
                any(r.get("shared_by_edits") for r in records))


def per_frame_per_edit(records: Iterable[Mapping], frames: int, edits: int) -> tuple[float, float]:
    """(steps, forwards) per frame per edit of one edited video from the work records of the stages that made it."""
    steps = forwards = 0.0
    for r in records:
        share = max(1, edits) if r.get("shared_by_edits") else 1
        steps += r["generator_steps"] / share
        forwards += r["generator_forwards"] / share
    return steps / max(1, frames), forwards / max(1, frames)
