"""Time ranges of edits: when an edit applies, as a per-frame envelope (torch-free: read at Snakefile parse time and
by the paste and stitching stages).

An edit may carry ``start`` and ``end`` (seconds, or ``frame:N``; missing = the video's start / end) and ``ramp``
(seconds >= 0). Its strength e(t) is 0 outside [start, end], 1 inside, with raised-cosine ramps of length
``ramp`` inside both ends. Frame t is at t / fps (``frames/info.json``; constant frame rate as the encode writes it).
The edit stage writes e(t) per frame to ``edit/{edit}.json``; frames where it is 0 keep the source's pixels.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from stitch.errors import StitchError

#: keys of a config edit that describe its time range (every other key is a direction)
RANGE_KEYS = ("start", "end", "ramp")


def parse_time(value, what: str) -> float | str:
    """A range bound: seconds >= 0 (a number, or its text) -> float, or ``frame:N`` -> the string ``frame:N``."""
    number = value
    if isinstance(value, str):
        m = re.fullmatch(r"frame:\s*(\d+)", value.strip())
        if m:
            return f"frame:{int(m[1])}"
        try:
            number = float(value)
        except ValueError:
            number = None
    if isinstance(number, bool) or not isinstance(number, (int, float)) or not math.isfinite(number) or number < 0:
        raise StitchError(f"{what} = {value!r}: give seconds (a number >= 0) or 'frame:N'")
    return float(number)


def check_range(spec: Mapping, what: str) -> dict:
    """{start, end, ramp} of an edit (either bound may be missing: the video's start / end) -> normalised
    {"start": float | "frame:N" | None, "end": ..., "ramp": float}; one-line StitchError naming ``what``."""
    start = None if spec.get("start") in (None, "") else parse_time(spec["start"], f"{what}: start")
    end = None if spec.get("end") in (None, "") else parse_time(spec["end"], f"{what}: end")
    raw = spec.get("ramp")
    try:
        ramp = 0.0 if raw in (None, "") else float(raw)
    except (TypeError, ValueError):
        ramp = math.nan
    if isinstance(raw, bool) or not math.isfinite(ramp) or ramp < 0:
        raise StitchError(f"{what}: ramp = {raw!r} must be a number of seconds >= 0")
    out = {"start": start, "end": end, "ramp": ramp}
    if type(start) is type(end) and start is not None and _as_number(end) < _as_number(start):
        raise StitchError(f"{what}: end {end} is before start {start}")
    return out


def _as_number(bound: float | str) -> float:
    return float(bound.split(":")[1]) if isinstance(bound, str) else bound


def split_edit(name: str, spec: Mapping) -> tuple[dict, dict | None]:
    """A config edit {direction: factor, [start, end, ramp]} -> (factors, normalised range or None)."""
    factors = {k: v for k, v in spec.items() if k not in RANGE_KEYS}
    if not factors:
        raise StitchError(f"edits.{name}: needs at least one direction with a factor, e.g. age: 8")
    has_range = any(k in spec for k in RANGE_KEYS)
    return factors, (check_range(spec, f"edits.{name}") if has_range else None)


def parse_range_column(text: str, where: str) -> dict[str, dict]:
    """samples.tsv ``edit_range``: ``<edit>=<start>:<end>[:<ramp>]`` items separated by ``;`` (a bound: seconds,
    ``frame:N`` or empty for the video's start / end), e.g. ``older=2:4:0.5;smile=frame:10:frame:40`` ->
    {edit: normalised range}."""
    out = {}
    for item in filter(None, (s.strip() for s in str(text).split(";"))):
        name, sep, spec = (part.strip() for part in item.partition("="))
        tokens, values = spec.split(":"), []
        while tokens:
            tok = tokens.pop(0).strip()
            values.append(f"frame:{tokens.pop(0).strip()}" if tok == "frame" and tokens else tok)
        if not sep or not name or len(values) not in (2, 3):
            raise StitchError(f"{where}: edit_range item {item!r} is not <edit>=<start>:<end>[:<ramp>] "
                              "(e.g. older=2:4:0.5 or smile=frame:10:frame:40)")
        out[name] = check_range(dict(zip(RANGE_KEYS, values)), f"{where}: edit_range {name}")
    return out


def frame_times(num_frames: int, fps: float) -> np.ndarray:
    """Timestamps (s) of the decoded frames: frame t at t / fps (constant frame rate, as the encode writes it)."""
    return np.arange(int(num_frames)) / float(fps)


def range_seconds(rng: Mapping, num_frames: int, fps: float, what: str) -> tuple[float, float, float]:
    """(start, end, ramp) in seconds of a normalised range on a video; a bound outside it is a StitchError."""
    duration = num_frames / fps

    def seconds(bound, default):
        if bound is None:
            return default
        if isinstance(bound, str):
            n = int(bound.split(":")[1])
            if n >= num_frames:
                raise StitchError(f"{what}: {bound} is outside the video (frames 0-{num_frames - 1})")
            return n / fps
        if bound > duration:
            raise StitchError(f"{what}: {bound:g} s is outside the video (0-{duration:.3f} s)")
        return float(bound)

    start, end = seconds(rng.get("start"), 0.0), seconds(rng.get("end"), duration)
    ramp = float(rng.get("ramp") or 0.0)
    if end < start:
        raise StitchError(f"{what}: end {rng.get('end')} ({end:.3f} s) is before start {rng.get('start')} "
                          f"({start:.3f} s)")
    if 2 * ramp > end - start:
        raise StitchError(f"{what}: two ramps of {ramp:g} s do not fit in {start:.3f}-{end:.3f} s; shorten the ramp")
    return start, end, ramp


def envelope(times: np.ndarray, start: float, end: float, ramp: float) -> np.ndarray:
    """Edit strength at ``times`` (s): 0 outside [start, end], 1 inside, raised-cosine ramps of ``ramp`` s inside
    both ends (0 at the bound, 1 at bound ± ramp; C¹-smooth); ``ramp`` 0 = a hard switch (bounds included)."""
    t = np.asarray(times, np.float64)
    inside = (t >= start) & (t <= end)
    if ramp <= 0:
        return inside.astype(np.float64)
    x = np.clip(np.minimum(t - start, end - t) / ramp, 0.0, 1.0)
    return np.where(inside, 0.5 - 0.5 * np.cos(np.pi * x), 0.0)


def frame_envelope(rng: Mapping | None, num_frames: int, fps: float, what: str) -> np.ndarray:
    """Per-frame envelope (T,) of an edit's range on a video (all ones without a range)."""
    if rng is None:
        return np.ones(int(num_frames))
    return envelope(frame_times(num_frames, fps), *range_seconds(rng, num_frames, fps, what))


def load_active(envelope_json) -> np.ndarray:
    """(T,) bool: the frames an edit changes (envelope > 0), from the edit stage's ``edit/{edit}.json``."""
    return np.asarray(json.loads(Path(envelope_json).read_text())["envelope"], np.float64) > 0
