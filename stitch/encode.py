"""Stage ``encode``: pasted frames -> H.264 at the exact source fps with the source audio, and the side-by-side
comparison video (original | reconstruction | edit), in ``results/{video}/encode/{method}/``.

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
from stitch.video import iter_frames, write_video

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


def _frames(frames, info: dict):
    gray = grayscale(info)
    return (to_gray(f) if gray else np.asarray(f) for f in frames)


def encode_frames(frames_npy, info_json, audio, out_video) -> None:
    """Encode one frame array (T, H, W, 3) uint8 as a video with the source's frame times and audio (grayscale
    when the source is)."""
    info, audio_path = source_facts(info_json, audio)
    n = info["num_frames"]
    frames = np.load(frames_npy, mmap_mode="r")
    assert frames.shape[0] == n, (frames.shape, n)
    write_video(out_video, _frames(frames, info), audio_path=audio_path, total=n, **writer_args(info))
    log.info("wrote %s (%d frames at %s/%s fps%s, audio=%s)", out_video, n, info["fps_num"], info["fps_den"],
             ", variable frame rate" if info.get("vfr") else "", bool(audio_path))


def run_recon(frames_npy, info_json, audio, out_video) -> None:
    """Rule ``encode_recon``: the method's reconstruction frames as ``_recon.mp4``."""
    encode_frames(frames_npy, info_json, audio, out_video)


def run(video, frames_npy, recon_video, info_json, audio, out_video, out_side_by_side, label: str = "edit") -> None:
    """The edited video and the side-by-side original | reconstruction | ``label``."""
    info, audio_path = source_facts(info_json, audio)
    n = info["num_frames"]
    encode_frames(frames_npy, info_json, audio, out_video)
    edited = _frames(np.load(frames_npy, mmap_mode="r"), info)
    panels = (
        side_by_side([orig, rec, ed], ["original", "reconstruction", label])
        for orig, rec, ed in zip(iter_frames(video), iter_frames(recon_video), edited)
    )
    written = write_video(out_side_by_side, panels, audio_path=audio_path, total=n, **writer_args(info))
    assert written == n, f"side-by-side has {written} frames, the video {n}"
    log.info("wrote %s", out_side_by_side)


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
