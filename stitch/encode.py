"""Stage ``encode``: pasted frames -> H.264 at the exact source fps with the source audio, and the side-by-side
comparison video (original | reconstruction | edit), in ``results/{video}/encode/{method}/``.

Two rules: ``encode`` (:func:`run`, an edit and its side-by-side) and ``encode_recon`` (:func:`run_recon`, the
method's reconstruction ``_recon.mp4`` alone: it is the middle panel of every side-by-side, so it has none)."""

from __future__ import annotations

import json
import logging
from fractions import Fraction
from pathlib import Path

import numpy as np

from stitch.video import iter_frames, side_by_side, write_video

log = logging.getLogger(__name__)


def _facts(info_json, audio) -> tuple[Fraction, int, str | None]:
    info = json.loads(Path(info_json).read_text())
    fps = Fraction(info["fps_num"], info["fps_den"])
    audio_path = audio if info["has_audio"] and Path(audio).stat().st_size > 0 else None
    return fps, info["num_frames"], audio_path


def encode_frames(frames_npy, info_json, audio, out_video) -> None:
    """Encode one frame array (T, H, W, 3) uint8 as a video at the source fps with the source audio."""
    fps, n, audio_path = _facts(info_json, audio)
    frames = np.load(frames_npy, mmap_mode="r")
    assert frames.shape[0] == n, (frames.shape, n)
    write_video(out_video, (np.asarray(f) for f in frames), fps, audio_path=audio_path, total=n)
    log.info("wrote %s (%d frames at %s fps, audio=%s)", out_video, n, fps, bool(audio_path))


def run_recon(frames_npy, info_json, audio, out_video) -> None:
    """Rule ``encode_recon``: the method's reconstruction frames as ``_recon.mp4``."""
    encode_frames(frames_npy, info_json, audio, out_video)


def run(video, frames_npy, recon_video, info_json, audio, out_video, out_side_by_side, label: str = "edit") -> None:
    """The edited video and the side-by-side original | reconstruction | ``label``."""
    fps, n, audio_path = _facts(info_json, audio)
    encode_frames(frames_npy, info_json, audio, out_video)
    edited = np.load(frames_npy, mmap_mode="r")
    panels = (
        side_by_side([orig, rec, np.asarray(ed)], ["original", "reconstruction", label])
        for orig, rec, ed in zip(iter_frames(video), iter_frames(recon_video), edited)
    )
    written = write_video(out_side_by_side, panels, fps, audio_path=audio_path, total=n)
    assert written == n, f"side-by-side has {written} frames, the video {n}"
    log.info("wrote %s", out_side_by_side)
