"""Stage ``frames``: exact video facts (fps as a fraction, frame count, size), the audio kept aside, and what a
faithful output needs: each frame's presentation time, grayscale or colour, the display rotation applied.

``frames/info.json`` keys: path, fps_num, fps_den, num_frames (frames that decode), width, height (as shown,
rotation applied), duration, has_audio, audio_rate, and (newer) vfr, pts (per frame, relative to the first,
in time_base_num/time_base_den seconds), grayscale, rotation. Readers use :func:`timing` and :func:`grayscale`,
which also accept an info.json written before these keys existed.
"""

from __future__ import annotations

import logging
from fractions import Fraction
from pathlib import Path

from stitch.atomic import write_json, write_text
from stitch.video import extract_audio, probe

log = logging.getLogger(__name__)


def run(video: str | Path, info_json: str | Path, audio_out: str | Path) -> dict:
    """Write ``info_json`` and the audio (an empty file when the video has none)."""
    info = probe(video)
    has_audio = extract_audio(video, audio_out) if info.has_audio else False
    if not has_audio:
        write_text(audio_out, "")
    tb = info.time_base or 1 / info.fps
    facts = {
        "path": str(video), "fps_num": info.fps.numerator, "fps_den": info.fps.denominator,
        "num_frames": info.num_frames, "width": info.width, "height": info.height,
        "duration": info.duration, "has_audio": bool(has_audio), "audio_rate": info.audio_rate,
        "vfr": info.vfr, "grayscale": info.grayscale, "rotation": info.rotation,
        "time_base_num": tb.numerator, "time_base_den": tb.denominator,
        "pts": list(info.pts) or list(range(info.num_frames)),
    }
    write_json(info_json, facts)
    log.info("%s: %d frames at %s fps%s, %dx%d%s%s, audio=%s", video, info.num_frames, info.fps,
             " (variable frame rate: the output keeps every frame's time)" if info.vfr else "",
             info.width, info.height, ", grayscale" if info.grayscale else "",
             f", rotated {info.rotation} degrees to upright" if info.rotation else "", has_audio)
    return facts


def timing(info: dict) -> dict:
    """``write_video`` keyword arguments that keep the source's frame times: its pts for a variable frame rate
    source, nothing (frame n at n / fps) otherwise."""
    if not info.get("vfr"):
        return {}
    return {"pts": info["pts"], "time_base": Fraction(info["time_base_num"], info["time_base_den"])}


def grayscale(info: dict) -> bool:
    """True when the source picture is grayscale (the output must be too)."""
    return bool(info.get("grayscale", False))
