"""Seam and sharpness measures (stitch.seam) on constructed frames with known answers."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from stitch.seam import OUTSIDE_PX, frame_measures, transition_band


def textured(h=100, w=120, seed=0, top=200):
    rng = np.random.default_rng(seed)
    return rng.integers(0, top, (h, w, 3)).astype(np.uint8)


def ramp_alpha(h=100, w=120, start=20, width=10):
    """Opacity 0 up to column ``start``, k / width at column start + k, 1 from start + width on."""
    x = np.arange(w, dtype=np.float32)
    return np.repeat(np.clip((x - start) / width, 0, 1)[None], h, axis=0)


def test_band_is_the_transition_plus_a_thin_outside_band():
    band = transition_band(ramp_alpha())
    cols = np.flatnonzero(band.any(axis=0))
    assert list(cols) == list(range(20 - OUTSIDE_PX + 1, 30))  # 3 outside (alpha 0), 9 in the ramp
    assert band[:, cols].all()


def test_perfect_paste_is_zero():
    src = textured()
    m = frame_measures(src.copy(), src, ramp_alpha())
    assert m == {"seam_mse": 0.0, "seam_grad": 0.0, "sharpness_ratio": 1.0}


def test_known_border_offset():
    src = textured(seed=1)
    alpha = ramp_alpha()
    c = 10.0  # paste = source + c * alpha: offsets 1..9 in the ramp, 10 inside, 0 outside
    out = np.rint(src + c * alpha[..., None]).astype(np.uint8)
    m = frame_measures(out, src, alpha)
    # band columns 18..29: offsets 0, 0, 0, 1, ..., 9 -> MSE = (1² + ... + 9²) / 12
    assert m["seam_mse"] == pytest.approx(285 / 12)
    # forward differences of the offset: 1 on columns 20..29, 0 on 18, 19 -> 10 / 12
    assert m["seam_grad"] == pytest.approx(10 / 12)
    assert m["sharpness_ratio"] == pytest.approx(1.0, rel=1e-3)  # a constant offset keeps the Laplacian (grey rounding)


def test_hard_step_is_a_gradient_jump():
    src = textured(seed=2)
    alpha = np.zeros(src.shape[:2], np.float32)
    alpha[:, 50:] = 1  # no feathering: the band is only the 3 columns just outside
    out = src.copy()
    out[:, 50:] += 40
    m = frame_measures(out, src, alpha)
    assert m["seam_mse"] == 0.0
    assert m["seam_grad"] == pytest.approx(40 / 3)  # the step sits between column 49 and 50


def test_blurred_face_has_a_low_sharpness_ratio_and_no_face_is_nan():
    src = textured(seed=3)
    alpha = ramp_alpha()
    out = src.copy()
    out[:, 30:] = cv2.GaussianBlur(src, (7, 7), 2)[:, 30:]
    assert frame_measures(out, src, alpha)["sharpness_ratio"] < 0.2
    m = frame_measures(out, src, np.zeros(src.shape[:2], np.float32))
    assert all(np.isnan(v) for v in m.values())
