"""Attribute probes independent of the generator.

``smile_score`` is a geometric score on dlib's 68 landmarks: how far the mouth corners sit above the centre of
the lips, plus how wide the mouth is, both in units of the inter-ocular distance, so it does not depend on image
size, position or in-plane rotation.
"""

from __future__ import annotations

import numpy as np

# dlib 68-point indices (iBUG layout)
_LEFT_EYE = slice(36, 42)
_RIGHT_EYE = slice(42, 48)
_MOUTH_LEFT, _MOUTH_RIGHT = 48, 54
_UPPER_LIP_MID, _LOWER_LIP_MID = 62, 66  # inner lip centre points


def smile_score(landmarks: np.ndarray) -> float:
    """Landmark smile score of one face (larger = bigger smile).

    ``landmarks``: (68, 2) x, y pixel coordinates. The frame is rotated so the eyes are level; the score is
    ``(corner lift + 0.5 * (mouth width - 0.8))`` where corner lift is how far the mean of the two mouth corners sits
    above the mean of the inner-lip centre points and both lengths are divided by the inter-ocular distance.
    """
    lm = np.asarray(landmarks, dtype=np.float64)
    assert lm.shape == (68, 2), f"smile_score wants (68, 2) landmarks, got {lm.shape}"
    eye_l, eye_r = lm[_LEFT_EYE].mean(0), lm[_RIGHT_EYE].mean(0)
    axis = eye_r - eye_l
    iod = float(np.hypot(*axis))
    if iod < 1e-6:
        raise ValueError("smile_score: eyes coincide, landmarks are degenerate")
    ex = axis / iod
    ey = np.array([-ex[1], ex[0]])  # points down in image coordinates (y grows downwards)
    centre = (eye_l + eye_r) / 2
    local = (lm - centre) @ np.stack([ex, ey], axis=1) / iod
    corners_y = (local[_MOUTH_LEFT, 1] + local[_MOUTH_RIGHT, 1]) / 2
    lips_y = (local[_UPPER_LIP_MID, 1] + local[_LOWER_LIP_MID, 1]) / 2
    lift = lips_y - corners_y
    width = local[_MOUTH_RIGHT, 0] - local[_MOUTH_LEFT, 0]
    return float(lift + 0.5 * (width - 0.8))
