"""FFHQ quads from landmarks, temporal smoothing and gap handling (stitch.align)."""

from __future__ import annotations

import numpy as np
import pytest

from stitch.align import ffhq_quad, fill_gaps, quad_frame, quad_frames, quad_from_cxy, smooth_quads

HEX = np.array([[np.cos(a), np.sin(a)] for a in np.linspace(0, 2 * np.pi, 6, endpoint=False)]) * 3.0


def synth_landmarks(eye_left, eye_right, mouth_left, mouth_right, fill=(0.0, 0.0)) -> np.ndarray:
    """68 landmarks whose eye means and mouth corners are exactly the given points."""
    lm = np.tile(np.asarray(fill, float), (68, 1))
    lm[36:42] = np.asarray(eye_left, float) + HEX
    lm[42:48] = np.asarray(eye_right, float) + HEX
    lm[48] = mouth_left
    lm[54] = mouth_right
    return lm


def rotate(points, angle_deg, centre=(0.0, 0.0), shift=(0.0, 0.0)):
    a = np.deg2rad(angle_deg)
    r = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    return (np.asarray(points) - centre) @ r.T + centre + shift


def test_upright_face_hand_computed():
    # eye_to_eye (20, 0), eye_to_mouth (0, 30): size = max(2*20, 1.8*30) = 54
    lm = synth_landmarks((40, 50), (60, 50), (42, 80), (58, 80))
    c, x, y = quad_frame(lm)
    np.testing.assert_allclose(c, [50, 53])
    np.testing.assert_allclose(x, [54, 0], atol=1e-12)
    np.testing.assert_allclose(y, [0, 54], atol=1e-12)
    np.testing.assert_allclose(ffhq_quad(lm), [[-4, -1], [-4, 107], [104, 107], [104, -1]], atol=1e-12)


def test_wide_eyes_face_hand_computed():
    # eye_to_eye (40, 0), eye_to_mouth (0, 20): the eye distance wins, size = 80
    lm = synth_landmarks((30, 50), (70, 50), (40, 70), (60, 70))
    c, x, y = quad_frame(lm, scale=0.5)
    np.testing.assert_allclose(c, [50, 52])
    np.testing.assert_allclose(x, [40, 0], atol=1e-12)
    np.testing.assert_allclose(y, [0, 40], atol=1e-12)


def test_rotated_face_hand_computed():
    # the upright face rotated by +90 deg about (50, 50): eyes vertical, mouth to the left
    lm = synth_landmarks((50, 40), (50, 60), (20, 58), (20, 42))
    c, x, y = quad_frame(lm)
    np.testing.assert_allclose(c, [47, 50])
    np.testing.assert_allclose(x, [0, 54], atol=1e-12)
    np.testing.assert_allclose(y, [-54, 0], atol=1e-12)


@pytest.mark.parametrize("angle", [-35.0, 12.5, 90.0, 170.0])
def test_rotation_equivariance(angle):
    rng = np.random.default_rng(0)
    lm = synth_landmarks((40, 50), (60, 52), (43, 80), (58, 81)) + rng.normal(0, 0.5, (68, 2))
    centre, shift = np.array([55.0, 60.0]), np.array([7.0, -3.0])
    c0, x0, y0 = quad_frame(lm, scale=1.3)
    c1, x1, y1 = quad_frame(rotate(lm, angle, centre, shift), scale=1.3)
    np.testing.assert_allclose(c1, rotate(c0, angle, centre, shift), atol=1e-9)
    np.testing.assert_allclose(x1, rotate(x0, angle), atol=1e-9)
    np.testing.assert_allclose(y1, rotate(y0, angle), atol=1e-9)
    np.testing.assert_allclose(ffhq_quad(rotate(lm, angle, centre, shift), 1.3),
                               rotate(ffhq_quad(lm, 1.3), angle, centre, shift), atol=1e-9)


def test_batched_matches_single():
    rng = np.random.default_rng(1)
    lms = synth_landmarks((40, 50), (60, 50), (42, 80), (58, 80))[None] + rng.normal(0, 2, (5, 68, 2))
    c, x, y = quad_frames(lms, 1.1)
    for t in range(5):
        ct, xt, yt = quad_frame(lms[t], 1.1)
        np.testing.assert_allclose([c[t], x[t], y[t]], [ct, xt, yt], atol=1e-12)


def moving_track(n=40, noise=0.0, seed=0):
    """A face drifting right and slowly rotating; returns noisy landmarks and the clean ones."""
    rng = np.random.default_rng(seed)
    base = synth_landmarks((140, 150), (180, 150), (145, 210), (175, 210), fill=(160, 180))
    clean = np.stack([rotate(base, 0.3 * t, (160, 180), (1.5 * t, 0.5 * t)) for t in range(n)])
    return clean + rng.normal(0, noise, clean.shape), clean


def test_constant_trajectory_unchanged():
    lm = np.repeat(synth_landmarks((40, 50), (60, 50), (42, 80), (58, 80))[None], 25, axis=0)
    quads, valid, raw = smooth_quads(lm, np.ones(25, bool), center_sigma=1.0, xy_sigma=3.0)
    assert valid.all()
    np.testing.assert_allclose(quads, np.repeat(ffhq_quad(lm[0])[None], 25, axis=0), atol=1e-9)
    np.testing.assert_allclose(raw, quads, atol=1e-9)


def test_smoothing_reduces_jitter():
    noisy, clean = moving_track(noise=1.5)
    quads, valid, raw = smooth_quads(noisy, np.ones(len(noisy), bool), center_sigma=1.0, xy_sigma=3.0)
    truth = np.stack([ffhq_quad(l) for l in clean])
    assert valid.all()
    np.testing.assert_allclose(raw, np.stack([ffhq_quad(l) for l in noisy]), atol=1e-9)
    jitter = lambda q: np.abs(np.diff(q, n=2, axis=0)).mean()  # noqa: E731
    assert jitter(quads) < 0.35 * jitter(raw)
    assert np.abs(quads - truth)[3:-3].mean() < 0.6 * np.abs(raw - truth)[3:-3].mean()
    # a linear trajectory survives smoothing (apart from the segment ends)
    q_clean, _, _ = smooth_quads(clean, None, center_sigma=1.0, xy_sigma=3.0)
    np.testing.assert_allclose(q_clean[10:-10], truth[10:-10], atol=0.05)


def test_short_gap_interpolated_linearly():
    _, clean = moving_track(n=30)
    lm = clean.copy()
    present = np.ones(30, bool)
    present[10:13] = False
    lm[10:13] = np.nan
    quads, valid, raw = smooth_quads(lm, present, center_sigma=0, xy_sigma=0, max_gap=3)
    assert valid.all()
    c, x, y = quad_frames(clean)
    for t in (10, 11, 12):
        w = (t - 9) / 4
        expect = quad_from_cxy((1 - w) * c[9] + w * c[13], (1 - w) * x[9] + w * x[13], (1 - w) * y[9] + w * y[13])
        np.testing.assert_allclose(raw[t], expect, atol=1e-9)
        np.testing.assert_allclose(quads[t], expect, atol=1e-9)
    # with smoothing the gap frames are finite and close to the truth (slow rotation -> nearly linear)
    q2, v2, _ = smooth_quads(lm, present, max_gap=3)
    assert v2.all() and np.isfinite(q2).all()
    np.testing.assert_allclose(q2[10:13], np.stack([ffhq_quad(l) for l in clean[10:13]]), atol=1.0)


def test_long_gap_and_track_ends_invalid():
    n = 40
    a = synth_landmarks((40, 50), (60, 50), (42, 80), (58, 80))
    b = a + [300, 100]  # the face comes back elsewhere after the gap
    lm = np.stack([a] * 20 + [b] * 20)
    present = np.ones(n, bool)
    present[:2] = False   # before the track starts
    present[14:24] = False  # 10 frames > max_gap
    present[-1] = False   # after the track ends
    lm[~present] = np.nan
    quads, valid, raw = smooth_quads(lm, present, center_sigma=2.0, xy_sigma=3.0, max_gap=8)
    np.testing.assert_array_equal(valid, present)
    assert np.isnan(quads[~valid]).all() and np.isnan(raw[~valid]).all()
    # segments are smoothed separately: nothing of the far-away face leaks across the gap
    np.testing.assert_allclose(quads[2:14], np.repeat(ffhq_quad(a)[None], 12, 0), atol=1e-9)
    np.testing.assert_allclose(quads[24:-1], np.repeat(ffhq_quad(b)[None], 15, 0), atol=1e-9)
    # the same gap within max_gap is bridged
    _, valid2, _ = smooth_quads(lm, present, max_gap=10)
    assert valid2[2:-1].all() and not valid2[:2].any() and not valid2[-1]


def test_fill_gaps():
    p = np.array([0, 1, 0, 0, 1, 0, 0, 0, 1, 0], bool)
    np.testing.assert_array_equal(fill_gaps(p, 2), [0, 1, 1, 1, 1, 0, 0, 0, 1, 0])
    np.testing.assert_array_equal(fill_gaps(p, 3), [0, 1, 1, 1, 1, 1, 1, 1, 1, 0])
    np.testing.assert_array_equal(fill_gaps(p, 0), p)
    assert not fill_gaps(np.zeros(4, bool), 5).any()
