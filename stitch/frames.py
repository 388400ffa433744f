"""Stage ``frames``: exact video facts (fps as a fraction, frame count, size) and the audio kept aside."""

from __future__ import annotations

import logging
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
    facts = {
        "path": str(video), "fps_num": info.fps.numerator, "fps_den": info.fps.denominator,
        "num_frames": info.num_frames, "width": info.width, "height": info.height,
        "duration": info.duration, "has_audio": bool(has_audio), "audio_rate": info.audio_rate,
    }
    write_json(info_json, facts)
    log.info("%s: %d frames at %s fps, %dx%d, audio=%s", video, info.num_frames, info.fps, info.width, info.height, has_audio)
    return facts
