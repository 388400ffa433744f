"""FFHQ alignment: quads from 68-point landmarks (the transform of the FFHQ dataset / STIT).

A quad is a (4, 2) float array of corners in frame pixel coordinates (pixel centres at integers), ordered
top-left, bottom-left, bottom-right, top-right of the aligned crop: ``[c-x-y, c-x+y, c+x+y, c+x-y]``.
"""

from __future__ import annotations

import numpy as np


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
