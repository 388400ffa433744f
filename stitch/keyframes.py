"""Keyframes for the ``fast`` schedule's PTI (issue #13): a bounded set of frames that covers a face track's poses
and expressions, and the frames to add where the reconstruction of the rest falls behind.

Features are the 68 landmarks with the head's position and size taken out (centred, divided by their RMS radius), so
two frames are far apart when the face is turned or its expression differs, not when the head only moved; a small
time term spreads keyframes over long stretches of one pose (light and background change over time too). Selection
is greedy farthest-point sampling: deterministic, and each new keyframe is the frame least like every chosen one.
"""

from __future__ import annotations

import numpy as np

from stitch.gaps import nearest_valid

TIME_WEIGHT = 0.05  # feature units per whole track length (a landmark shape change of ~0.05 RMS is a clear pose change)


def fill_gaps(landmarks: np.ndarray) -> np.ndarray:
    """(T, 68, 2) landmarks with NaN frames (interpolated detections) filled from the nearest frame that has them."""
    lm = np.asarray(landmarks, np.float64)
    ok = np.isfinite(lm).all(axis=(1, 2))
    if not ok.any():
        return np.zeros_like(lm)
    return lm[nearest_valid(ok)]


def landmark_features(landmarks: np.ndarray, time_weight: float = TIME_WEIGHT) -> np.ndarray:
    """(T, 68, 2) landmarks -> (T, 137) pose/expression features (shape without position and scale, plus time)."""
    lm = fill_gaps(landmarks)
    assert lm.ndim == 3 and lm.shape[1:] == (68, 2), lm.shape
    centred = lm - lm.mean(axis=1, keepdims=True)
    radius = np.sqrt((centred**2).sum(axis=2).mean(axis=1)).clip(1e-6)
    shape = (centred / radius[:, None, None]).reshape(len(lm), -1)
    t = np.linspace(0.0, 1.0, len(lm)) if len(lm) > 1 else np.zeros(1)
    return np.concatenate([shape, time_weight * t[:, None]], axis=1)


def farthest_points(features: np.ndarray, k: int, chosen=(), radius: float = 0.0) -> np.ndarray:
    """Indices (sorted) of ``chosen`` plus up to ``k`` more rows of ``features``, each the farthest from all chosen
    so far (the first: the row nearest the mean when nothing is chosen); stops early once every row is within
    ``radius`` of a chosen one (rows at distance 0 are never added twice)."""
    x = np.asarray(features, np.float64)
    picked = [int(i) for i in chosen]
    if not picked and k > 0 and len(x):
        picked.append(int(np.argmin(((x - x.mean(axis=0)) ** 2).sum(axis=1))))
        k -= 1
    if not len(x) or not picked:
        return np.array(sorted(picked), np.int64)
    dist = np.min([((x - x[i]) ** 2).sum(axis=1) for i in picked], axis=0)
    for _ in range(k):
        j = int(np.argmax(dist))
        if dist[j] <= radius**2:
            break
        picked.append(j)
        dist = np.minimum(dist, ((x - x[j]) ** 2).sum(axis=1))
    return np.array(sorted(set(picked)), np.int64)


def select_keyframes(features: np.ndarray, k: int, radius: float = 0.0, spacing: int = 0) -> np.ndarray:
    """``k`` keyframes (all frames when ``k`` <= 0 or the track is not longer than ``k``), then, when ``radius`` > 0,
    more until every frame's features are within ``radius`` of a keyframe's, at most one per ``spacing`` frames
    (``spacing`` 0: no bound). The count follows how varied the track is, not its length: a track played twice
    gets the keyframes of one play."""
    n = len(features)
    if k <= 0 or n <= k:
        return np.arange(n)
    keys = farthest_points(features, k)
    most = min(n, max(k, n // spacing)) if spacing > 0 else n
    if radius > 0 and most > len(keys):
        keys = farthest_points(features, most - len(keys), chosen=keys, radius=radius)
    return keys


def lagging_frames(psnr: np.ndarray, keys: np.ndarray, features: np.ndarray, k: int, margin_db: float) -> np.ndarray:
    """Up to ``k`` non-key frames whose reconstruction PSNR is more than ``margin_db`` below the keyframes' median,
    spread over those frames by farthest-point sampling from the current keyframes."""
    psnr = np.asarray(psnr, np.float64)
    behind = np.flatnonzero(psnr < np.median(psnr[keys]) - margin_db)
    behind = np.setdiff1d(behind, keys)
    if k <= 0 or not len(behind):
        return np.zeros(0, np.int64)
    pool = np.concatenate([keys, behind])
    picked = farthest_points(features[pool], k, chosen=range(len(keys)))
    return np.sort(pool[picked[picked >= len(keys)]])
