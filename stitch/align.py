"""FFHQ alignment: quads from 68-point landmarks (the transform of the FFHQ dataset / STIT).

A quad is a (4, 2) float array of corners in frame pixel coordinates (pixel centres at integers), ordered
top-left, bottom-left, bottom-right, top-right of the aligned crop: ``[c-x-y, c-x+y, c+x+y, c+x-y]``.
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter1d


def quad_frame(landmarks: np.ndarray, scale: float = 1.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(c, x, y) of the FFHQ crop for one face: centre and the two half-axis vectors."""
    lm = np.asarray(landmarks, dtype=np.float64)
    assert lm.shape == (68, 2), f"expected (68, 2) landmarks, got {lm.shape}"
    eye_left = lm[36:42].mean(axis=0)
    eye_right = lm[42:48].mean(axis=0)
    eye_avg = (eye_left + eye_right) * 0.5
    eye_to_eye = eye_right - eye_left
    mouth_avg = (lm[48] + lm[54]) * 0.5
    eye_to_mouth = mouth_avg - eye_avg
    x = eye_to_eye - np.flipud(eye_to_mouth) * [-1, 1]
    x = x / np.hypot(*x)
    x = x * max(np.hypot(*eye_to_eye) * 2.0, np.hypot(*eye_to_mouth) * 1.8) * scale
    y = np.flipud(x) * [-1, 1]
    c = eye_avg + eye_to_mouth * 0.1
    return c, x, y


def quad_from_cxy(c: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Corners ``[c-x-y, c-x+y, c+x+y, c+x-y]``; works on (2,) or batched (..., 2) inputs."""
    return np.stack([c - x - y, c - x + y, c + x + y, c + x - y], axis=-2)


def ffhq_quad(landmarks: np.ndarray, scale: float = 1.0) -> np.ndarray:
    """FFHQ quad (4, 2) of one face from its 68 landmarks (no temporal smoothing)."""
    return quad_from_cxy(*quad_frame(landmarks, scale))


def quad_frames(landmarks: np.ndarray, scale: float = 1.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Batched :func:`quad_frame`: landmarks (T, 68, 2) -> c, x, y each (T, 2); NaN rows give NaN outputs."""
    lm = np.asarray(landmarks, dtype=np.float64)
    assert lm.ndim == 3 and lm.shape[1:] == (68, 2), f"expected (T, 68, 2) landmarks, got {lm.shape}"
    eye_left = lm[:, 36:42].mean(axis=1)
    eye_right = lm[:, 42:48].mean(axis=1)
    eye_avg = (eye_left + eye_right) * 0.5
    eye_to_eye = eye_right - eye_left
    mouth_avg = (lm[:, 48] + lm[:, 54]) * 0.5
    eye_to_mouth = mouth_avg - eye_avg
    x = eye_to_eye - eye_to_mouth[:, ::-1] * [-1, 1]
    with np.errstate(invalid="ignore", divide="ignore"):
        x = x / np.hypot(x[:, 0], x[:, 1])[:, None]
    size = np.maximum(np.hypot(*eye_to_eye.T) * 2.0, np.hypot(*eye_to_mouth.T) * 1.8)
    x = x * (size * scale)[:, None]
    y = x[:, ::-1] * [-1, 1]
    c = eye_avg + eye_to_mouth * 0.1
    return c, x, y


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """[start, stop) of every run of True in a 1-D bool array."""
    m = np.concatenate([[False], np.asarray(mask, bool), [False]])
    d = np.flatnonzero(np.diff(m.astype(np.int8)))
    return list(zip(d[::2].tolist(), d[1::2].tolist()))


def fill_gaps(present: np.ndarray, max_gap: int) -> np.ndarray:
    """Frames that are present or inside an interior gap of at most ``max_gap`` frames (not before the first
    or after the last present frame)."""
    present = np.asarray(present, bool)
    valid = present.copy()
    for a, b in _runs(~present):
        if a > 0 and b < len(present) and b - a <= max_gap:
            valid[a:b] = True
    return valid


def _smooth(v: np.ndarray, sigma: float) -> np.ndarray:
    if sigma <= 0 or len(v) < 2:
        return v.copy()
    return gaussian_filter1d(v, sigma, axis=0, mode="nearest")


def smooth_quads(
    landmarks: np.ndarray, present: np.ndarray | None = None, center_sigma: float = 1.0, xy_sigma: float = 3.0,
    max_gap: int = 8, scale: float = 1.0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Temporally smoothed FFHQ quads of one face track.

    ``landmarks`` (T, 68, 2) with NaN rows where the face was not found; ``present`` (T,) bool (default: rows
    without NaN). Per frame c, x, y (:func:`quad_frame`); c/x/y are interpolated linearly across interior gaps of
    at most ``max_gap`` frames; frames in longer gaps or before/after the track are invalid (passed through
    unedited). Within each contiguous valid segment c is smoothed with a Gaussian of ``center_sigma`` frames and
    x, y with ``xy_sigma`` (mode 'nearest' at the segment ends; sigma 0 = no smoothing).

    Returns ``quads`` (T, 4, 2) smoothed, ``valid`` (T,) bool, ``raw_quads`` (T, 4, 2) un-smoothed (interpolated
    in the gaps); both quads are NaN on invalid frames.
    """
    lm = np.asarray(landmarks, dtype=np.float64)
    assert lm.ndim == 3 and lm.shape[1:] == (68, 2), f"expected (T, 68, 2) landmarks, got {lm.shape}"
    n = len(lm)
    finite = np.isfinite(lm).all(axis=(1, 2))
    present = finite if present is None else (np.asarray(present, bool) & finite)
    assert present.shape == (n,), (present.shape, n)
    c, x, y = quad_frames(np.where(finite[:, None, None], lm, 0.0), scale)
    valid = fill_gaps(present, int(max_gap))
    cxy = np.concatenate([c, x, y], axis=1)  # (T, 6)
    cxy[~present] = np.nan
    t_all = np.arange(n)
    idx = np.flatnonzero(present)
    gaps = valid & ~present
    if gaps.any():
        for k in range(6):
            cxy[gaps, k] = np.interp(t_all[gaps], idx, cxy[idx, k])
    raw = cxy.copy()
    smooth = np.full_like(cxy, np.nan)
    for a, b in _runs(valid):
        seg = cxy[a:b]
        smooth[a:b, 0:2] = _smooth(seg[:, 0:2], float(center_sigma))
        smooth[a:b, 2:6] = _smooth(seg[:, 2:6], float(xy_sigma))
    quads = quad_from_cxy(smooth[:, 0:2], smooth[:, 2:4], smooth[:, 4:6])
    raw_quads = quad_from_cxy(raw[:, 0:2], raw[:, 2:4], raw[:, 4:6])
    return quads, valid, raw_quads


def select_tracks(n_tracks: int, faces) -> list[int]:
    """Track ids chosen by the ``faces`` setting: 'largest' (track 0), 'all', or a list of ids."""
    from stitch.errors import StitchError

    if n_tracks == 0:
        raise StitchError("no face track found in the video (no face detected on enough frames)")
    if faces in (None, "largest"):
        return [0]
    if faces == "all":
        return list(range(n_tracks))
    ids = [int(f) for f in (faces if isinstance(faces, (list, tuple)) else [faces])]
    bad = [i for i in ids if not 0 <= i < n_tracks]
    if bad:
        raise StitchError(f"faces {bad} not found: the video has {n_tracks} face track(s), ids 0..{n_tracks - 1}")
    return ids


def run(tracks_npz, out_npz, faces="largest", center_sigma: float = 1.0, xy_sigma: float = 3.0,
        max_gap: int = 8, scale: float = 1.0) -> None:
    """Stage ``align``: smoothed quads (F, T, 4, 2), valid (F, T), raw_quads, track_ids of the selected faces."""
    import logging

    from stitch.stagefiles import Quads, Tracks

    tr = Tracks.load(tracks_npz)
    lms, present = tr.landmarks, tr.present
    ids = select_tracks(len(lms), faces)
    out = [smooth_quads(lms[i], present[i], center_sigma, xy_sigma, max_gap, scale) for i in ids]
    quads = np.stack([o[0] for o in out])
    valid = np.stack([o[1] for o in out])
    raw = np.stack([o[2] for o in out])
    Quads(quads, valid, raw, np.asarray(ids, np.int64)).save(out_npz)
    log = logging.getLogger(__name__)
    for i, v in zip(ids, valid):
        log.info("face %d: %d/%d frames valid (sigma c=%.2f xy=%.2f, max_gap=%d, scale=%.3f)",
                 i, int(v.sum()), len(v), center_sigma, xy_sigma, max_gap, scale)
