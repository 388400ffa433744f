"""Frames without a value (no face, no landmarks): the index of the nearest frame that has one.

O(T log T) by binary search; a (frames x valid frames) distance table would be 184 MB at 4,800 frames.
"""

from __future__ import annotations

import numpy as np


def nearest_valid(ok: np.ndarray) -> np.ndarray:
    """(T,) bool -> (T,) int: for every frame the nearest frame where ``ok`` (itself when ok; a tie: the earlier
    frame). ``ok`` must hold at least one True."""
    ok = np.asarray(ok, bool)
    idx = np.flatnonzero(ok)
    if len(idx) == 0:
        raise ValueError("nearest_valid: no valid frame")
    t = np.arange(len(ok))
    pos = np.searchsorted(idx, t)
    left, right = idx[np.clip(pos - 1, 0, len(idx) - 1)], idx[np.clip(pos, 0, len(idx) - 1)]
    return np.where(np.abs(t - left) <= np.abs(right - t), left, right)
