"""Aligned square crops from FFHQ quads, and the perspective maps between crop and frame."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np


def crop_corners(size: int) -> np.ndarray:
    """The crop's corners in its own pixel coordinates (centres at integers), in quad order TL, BL, BR, TR."""
    lo, hi = -0.5, size - 0.5
    return np.array([[lo, lo], [lo, hi], [hi, hi], [hi, lo]], dtype=np.float64)


def perspective_coeffs(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """3x3 homography H with dst ~ H @ src, from 4+ point pairs: the 8 coefficients by least squares."""
    src, dst = np.asarray(src, np.float64), np.asarray(dst, np.float64)
    assert src.shape == dst.shape and src.shape[0] >= 4 and src.shape[1] == 2
    rows, rhs = [], []
    for (x, y), (u, v) in zip(src, dst):
        rows.append([x, y, 1, 0, 0, 0, -u * x, -u * y])
        rows.append([0, 0, 0, x, y, 1, -v * x, -v * y])
        rhs += [u, v]
    coeffs, *_ = np.linalg.lstsq(np.asarray(rows), np.asarray(rhs), rcond=None)
    return np.append(coeffs, 1.0).reshape(3, 3)


def crop_face(frame: np.ndarray, quad: np.ndarray, size: int) -> np.ndarray:
    """Warp the quad of ``frame`` (H, W, 3 uint8) to a ``size`` x ``size`` crop.

    As in the reference, a quad much larger than the output is first shrunk by an integer factor
    (area averaging) so the bilinear warp does not alias; outside the frame the image is reflected.
    """
    assert frame.ndim == 3 and frame.shape[2] == 3, frame.shape
    quad = np.asarray(quad, np.float64)
    assert quad.shape == (4, 2), quad.shape
    qsize = np.hypot(*(quad[3] - quad[0]))
    shrink = int(np.floor(qsize / size * 0.5))
    img = frame
    if shrink > 1:
        h, w = frame.shape[:2]
        img = cv2.resize(frame, (int(round(w / shrink)), int(round(h / shrink))), interpolation=cv2.INTER_AREA)
        sx, sy = img.shape[1] / w, img.shape[0] / h
        quad = (quad + 0.5) * [sx, sy] - 0.5
    h_out_to_src = perspective_coeffs(crop_corners(size), quad)
    return cv2.warpPerspective(
        np.ascontiguousarray(img), h_out_to_src, (size, size),
        flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_REFLECT_101,
    )


def run(video, quads_npz, info_json, out_npz, size: int, shard: int = 0, shard_frames: int | None = None) -> None:
    """Stage ``crop``, one shard: crops (F, T, S, S, 3) of every selected face track in frames
    ``shard * shard_frames ..`` (all frames without ``shard_frames``); zeros where a frame is invalid."""
    import json
    import logging

    from stitch.errors import StitchError
    from stitch.progress import tqdm
    from stitch.segments import source_frames
    from stitch.shards import shard_range
    from stitch.stagefiles import Crops, Quads

    q = Quads.load(quads_npz)
    info = json.loads(Path(info_json).read_text())
    n_faces, n_frames = q.valid.shape
    if n_frames != info["num_frames"]:
        raise StitchError(f"{quads_npz}: {n_frames} frames, {info_json} has {info['num_frames']}; rerun align")
    start, stop = shard_range(shard, n_frames, shard_frames)
    quads, valid = q.quads[:, start:stop], q.valid[:, start:stop]
    crops = np.zeros((n_faces, stop - start, size, size, 3), np.uint8)
    t = -1
    for t, frame in enumerate(tqdm(source_frames(video, info, start, stop), total=stop - start, desc="crop")):
        for f in np.flatnonzero(valid[:, t]):
            crops[f, t] = crop_face(frame, quads[f, t], size)
    if t + 1 != stop - start:
        raise StitchError(f"{video}: decoded {t + 1} frames from frame {start}, the shard has {stop - start}")
    Crops(crops, valid, quads, q.track_ids).save(out_npz)
    logging.getLogger(__name__).info("cropped %d face track(s) x frames %d-%d of %d at %d px", n_faces, start,
                                     stop - 1, n_frames, size)
