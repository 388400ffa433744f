"""Face detection on a scaled-down copy vs full resolution (issue #12, item 4): speed and landmark difference.

    python benchmarks/bench_landmarks.py [--frames 40] [--long-side 640] [--videos talk_1 ...]

For every video of ``../shared/data/videos`` (its first ``--frames`` frames), as stored and scaled into a 1920x1080
frame (the video enlarged to 1080 px high, centred, like a 1080p recording): dlib HOG detection + 68 landmarks with
``landmarks.detect_long_side`` 0 (detect at full resolution) and ``--long-side`` (detect on a copy whose long side is
that, landmarks fitted at full resolution in the scaled-up box). Prints ms per frame of each, the speed-up, the
frames where each finds a face, and the mean / max distance (px, full-resolution pixels) between the two largest
faces' 68 landmarks on the frames where both find one.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_methods import shared_videos  # noqa: E402

from stitch.landmarks import FaceLandmarker  # noqa: E402
from stitch.tables import markdown  # noqa: E402
from stitch.video import read_frames  # noqa: E402


def to_1080p(frame: np.ndarray) -> np.ndarray:
    """``frame`` enlarged to 1080 px high and centred in a black 1920x1080 frame."""
    h, w = frame.shape[:2]
    s = 1080 / h
    big = cv2.resize(frame, (min(1920, round(w * s)), 1080), interpolation=cv2.INTER_CUBIC)
    out = np.zeros((1080, 1920, 3), np.uint8)
    x = (1920 - big.shape[1]) // 2
    out[:, x : x + big.shape[1]] = big
    return out


def largest(frames: list[np.ndarray], landmarker: FaceLandmarker) -> tuple[list[np.ndarray | None], float]:
    """The largest face's landmarks per frame (None: no face) and the seconds per frame."""
    t = time.perf_counter()
    out = []
    for f in frames:
        dets = landmarker.detect(f)
        box_area = [(d.box[2] - d.box[0]) * (d.box[3] - d.box[1]) for d in dets]
        out.append(dets[int(np.argmax(box_area))].landmarks if dets else None)
    return out, (time.perf_counter() - t) / len(frames)


def compare(video: str, kind: str, frames: list[np.ndarray], long_side: int) -> dict:
    full, t_full = largest(frames, FaceLandmarker(0, 0))
    fast, t_fast = largest(frames, FaceLandmarker(0, long_side))
    both = [np.linalg.norm(a - b, axis=1) for a, b in zip(full, fast) if a is not None and b is not None]
    dist = np.concatenate(both) if both else np.array([np.nan])
    return {"video": video, "input": kind, "size": f"{frames[0].shape[1]}x{frames[0].shape[0]}",
            "frames": len(frames), "ms_full": 1e3 * t_full, "ms_scaled": 1e3 * t_fast, "speedup": t_full / t_fast,
            "faces_full": sum(a is not None for a in full), "faces_scaled": sum(b is not None for b in fast),
            "landmark_px_mean": float(np.nanmean(dist)), "landmark_px_max": float(np.nanmax(dist))}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=40)
    ap.add_argument("--long-side", type=int, default=640)
    ap.add_argument("--videos", nargs="*", help="video stems in ../shared/data/videos (default: all)")
    a = ap.parse_args()
    rows = []
    for path in shared_videos(a.videos):
        frames = list(read_frames(path, 0, a.frames))
        rows.append(compare(path.stem, "as stored", frames, a.long_side))
        rows.append(compare(path.stem, "in 1080p", [to_1080p(f) for f in frames], a.long_side))
        print(rows[-2], rows[-1], sep="\n", flush=True)
    df = pd.DataFrame(rows)
    print(f"\n## Detection on a copy scaled to {a.long_side} px vs full resolution (first {a.frames} frames)\n")
    print(markdown(df, floatfmt=".3g"))


if __name__ == "__main__":
    main()
