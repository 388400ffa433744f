"""Stage ``encode``: edited frames -> H.264 at the exact source fps with the source audio, and the
side-by-side comparison video (original | PTI reconstruction | edit)."""

from __future__ import annotations

import json
import logging
from fractions import Fraction
from pathlib import Path

import numpy as np

from stitch.video import iter_frames, side_by_side, write_video

log = logging.getLogger(__name__)


def run(video, frames_npy, recon_npy, info_json, audio, out_video, out_side_by_side, label: str = "edit") -> None:
    info = json.loads(Path(info_json).read_text())
    fps = Fraction(info["fps_num"], info["fps_den"])
    audio_path = audio if info["has_audio"] and Path(audio).stat().st_size > 0 else None
    edited = np.load(frames_npy, mmap_mode="r")
    recon = np.load(recon_npy, mmap_mode="r")
    n = info["num_frames"]
    assert edited.shape[0] == recon.shape[0] == n, (edited.shape, recon.shape, n)
    write_video(out_video, (np.asarray(f) for f in edited), fps, audio_path=audio_path, total=n)
    panels = (
        side_by_side([orig, np.asarray(rec), np.asarray(ed)], ["original", "reconstruction", label])
        for orig, rec, ed in zip(iter_frames(video), recon, edited)
    )
    write_video(out_side_by_side, panels, fps, audio_path=audio_path, total=n)
    log.info("wrote %s and %s (%d frames at %s fps, audio=%s)", out_video, out_side_by_side, n, fps, bool(audio_path))
