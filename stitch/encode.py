"""Stage ``encode``: the paste stage's H.264 segments (one per shard) joined without re-encoding into the video at
the exact source frame times with the source audio, and likewise the side-by-side comparison video (original |
reconstruction | edit), in ``results/{video}/encode/{method}/``; plus what the paste stage needs to write frames as
the output shows them (:func:`writer_frame`, :func:`side_by_side`).

Two rules: ``encode`` (:func:`run`, an edit and its side-by-side) and ``encode_recon`` (:func:`run_recon`, the
method's reconstruction ``_recon.mp4`` alone: it is the middle panel of every side-by-side, so it has none)."""

from __future__ import annotations

import json
import logging
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np

from stitch.frames import grayscale, timing
from stitch.segments import concat

log = logging.getLogger(__name__)


def source_facts(info_json, audio) -> tuple[dict, str | None]:
    """frames/info.json and the source audio's path (None when the video has none)."""
    info = json.loads(Path(info_json).read_text())
    audio_path = audio if info["has_audio"] and Path(audio).stat().st_size > 0 else None
    return info, audio_path


def writer_args(info: dict) -> dict:
    """fps and (variable frame rate) per-frame times of the source."""
    return {"fps": Fraction(info["fps_num"], info["fps_den"]), **timing(info)}


def to_gray(frame: np.ndarray) -> np.ndarray:
    """An RGB frame as gray RGB (BT.601 luma in all three channels): a grayscale source gives grayscale output."""
    y = np.asarray(frame, np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
    return np.repeat(np.clip(np.rint(y), 0, 255).astype(np.uint8)[..., None], 3, axis=2)


def writer_frame(frame: np.ndarray, info: dict) -> np.ndarray:
    """An output frame as it is encoded: gray when the source is (frames/info.json)."""
    return to_gray(frame) if grayscale(info) else np.asarray(frame)


def run_recon(segments, info_json, audio, out_video) -> None:
    """Rule ``encode_recon``: the method's reconstruction segments joined as ``_recon.mp4``."""
    info, audio_path = source_facts(info_json, audio)
    concat(segments, out_video, info, audio_path)


def run(segments, side_by_side_segments, info_json, audio, out_video, out_side_by_side) -> None:
    """The edited video and the side-by-side original | reconstruction | edit, each joined from its segments."""
    info, audio_path = source_facts(info_json, audio)
    concat(segments, out_video, info, audio_path)
    concat(side_by_side_segments, out_side_by_side, info, audio_path)
    log.info("wrote %s and %s (%d frames at %s/%s fps%s, audio=%s)", out_video, out_side_by_side, info["num_frames"],
             info["fps_num"], info["fps_den"], ", variable frame rate" if info.get("vfr") else "", bool(audio_path))


def side_by_side(frames: list[np.ndarray], labels: list[str], bar: int = 24) -> np.ndarray:
    """Panels left to right, each resized to the first one's height, with a label bar on top."""
    assert len(frames) == len(labels) and frames, (len(frames), len(labels))
    h = frames[0].shape[0]
    panels = []
    for f, text in zip(frames, labels):
        f = np.asarray(f, dtype=np.uint8)
        if f.shape[0] != h:
            f = cv2.resize(f, (round(f.shape[1] * h / f.shape[0]), h), interpolation=cv2.INTER_AREA)
        top = np.zeros((bar, f.shape[1], 3), np.uint8)
        scale = bar / 40
        cv2.putText(top, text, (4, bar - 7), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 1, cv2.LINE_AA)
        panels.append(np.concatenate([top, f], axis=0))
    out = np.concatenate(panels, axis=1)
    if out.shape[0] % 2 or out.shape[1] % 2:  # keep 4:2:0 encodable
        out = np.pad(out, ((0, out.shape[0] % 2), (0, out.shape[1] % 2), (0, 0)))
    return np.ascontiguousarray(out)
