"""Segmentation fallback and STIT stitching masks (stitch.masks)."""

from __future__ import annotations

import numpy as np
import pytest

from stitch.align import ffhq_quad
from stitch.crop import crop_corners, crop_face
from stitch.masks import (
    foreground_from_parsing, landmark_mask, landmarks_to_crop, stitching_masks, track_landmark_masks,
)


def face_landmarks() -> np.ndarray:
    """A plausible upright 68-point face (jaw, brows, nose, eyes, mouth) around (200, 220), ~120 px wide."""
    lm = np.zeros((68, 2))
    a = np.linspace(np.pi * 0.95, np.pi * 0.05, 17)
    lm[0:17] = np.stack([200 + 65 * np.cos(a), 190 + 95 * np.sin(a)], 1)  # jaw from the left ear via the chin
    lm[17:22] = np.stack([np.linspace(150, 190, 5), [172, 166, 164, 165, 168]], 1)
    lm[22:27] = np.stack([np.linspace(210, 250, 5), [168, 165, 164, 166, 172]], 1)
    lm[27:36] = np.stack([[200] * 4 + list(np.linspace(185, 215, 5)), [185, 200, 215, 230] + [240] * 5], 1)
    ring = np.array([[np.cos(t), 0.5 * np.sin(t)] for t in np.linspace(0, 2 * np.pi, 6, endpoint=False)]) * 12
    lm[36:42] = [172, 190] + ring
    lm[42:48] = [228, 190] + ring
    m = np.array([[np.cos(t), 0.4 * np.sin(t)] for t in np.linspace(np.pi, -np.pi, 20, endpoint=False)])
    lm[48:68] = [200, 262] + m * [30, 15]
    lm[54] = [230, 262]
    lm[48] = [170, 262]
    return lm


def disc(size, centre, radius):
    yy, xx = np.mgrid[:size, :size]
    return (xx - centre[0]) ** 2 + (yy - centre[1]) ** 2 <= radius ** 2


def test_foreground_from_parsing():
    labels = np.array([[0, 1, 16], [17, 18, 14]])
    np.testing.assert_array_equal(foreground_from_parsing(labels), [[False, True, False], [True, False, True]])


def test_landmarks_to_crop_matches_crop_face():
    frame = np.zeros((300, 320, 3), np.uint8)
    quad = np.array([[60.3, 40.7], [45.1, 250.2], [265.6, 275.4], [290.2, 55.9]])
    np.testing.assert_allclose(landmarks_to_crop(quad, quad, 128), crop_corners(128), atol=1e-6)
    pt = np.array([171.0, 143.0])
    frame[143, 171] = 255
    frame[142:145, 170:173] = np.maximum(frame[142:145, 170:173], 128)
    crop = crop_face(frame, quad, 256)
    peak = np.unravel_index(crop[..., 0].argmax(), crop.shape[:2])[::-1]
    np.testing.assert_allclose(landmarks_to_crop(pt, quad, 256), peak, atol=1.0)
    assert landmarks_to_crop(np.zeros((5, 68, 2)), quad, 64).shape == (5, 68, 2)


def test_landmark_mask_covers_face_and_forehead():
    lm = face_landmarks()
    quad = ffhq_quad(lm)
    size = 256
    lmc = landmarks_to_crop(lm, quad, size)
    m = landmark_mask(lmc, size)
    assert m.shape == (size, size) and m.dtype == np.float32 and set(np.unique(m)) <= {0.0, 1.0}
    ij = np.clip(np.rint(lmc).astype(int), 0, size - 1)
    assert m[ij[:, 1], ij[:, 0]].mean() > 0.9  # (nearly) all landmarks inside (hull edge points may round out)
    inner = np.rint(lmc[27:68]).astype(int)
    assert m[inner[:, 1], inner[:, 0]].all()
    # the mask reaches well above the brows (forehead), not just the landmark hull
    brow_top = lmc[17:27, 1].min()
    rows = np.flatnonzero(m.any(axis=1))
    eye_to_chin = lmc[8, 1] - lmc[36:48, 1].mean()
    assert rows[0] < brow_top - 0.4 * eye_to_chin
    assert rows[0] > 0  # but not the whole crop
    assert 0.15 < m.mean() < 0.6


def test_stitching_masks_nest():
    res = 256
    fg = disc(res, (128, 120), 60)
    ms = stitching_masks(fg, res)
    assert set(ms) == {"mask", "full_mask", "border_mask", "content_mask"}
    for v in ms.values():
        assert v.shape == (res, res) and v.dtype == np.float32 and v.min() >= 0 and v.max() <= 1
    mask, full, border, content = (ms[k] > 0.5 for k in ("mask", "full_mask", "border_mask", "content_mask"))
    np.testing.assert_array_equal(mask, fg)
    assert not (content & ~mask).any() and not (mask & ~full).any()  # content ⊂ mask ⊂ full
    np.testing.assert_array_equal(border, full & ~mask)  # away from the crop edge: border = full - mask
    np.testing.assert_array_equal(content, mask)
    # dilation scales with the resolution: 50 px at 1024 -> 12.5 -> 12 px (square kernel)
    cols = np.flatnonzero(full[120])
    assert cols[0] == 128 - 60 - 12 and cols[-1] == 128 + 60 + 12
    ms1024 = stitching_masks(disc(1024, (512, 480), 240), 1024)
    cols = np.flatnonzero(ms1024["full_mask"][480] > 0.5)
    assert cols[0] == 512 - 240 - 50


def test_stitching_masks_crop_edge():
    res = 128
    fg = np.zeros((res, res), bool)
    fg[40:, 30:100] = True  # touches the bottom edge (neck)
    ms = stitching_masks(fg.astype(np.float32), res)
    mask, full, border, content = (ms[k] > 0.5 for k in ("mask", "full_mask", "border_mask", "content_mask"))
    b = round(50 * res / 1024)
    assert border[res - b:, 30:100].all() and not content[res - b:].any()  # foreground near the edge -> border
    assert content[40 : res - b, 30:100].all()
    np.testing.assert_array_equal(border | content, full)
    assert not (border & content).any()
    np.testing.assert_array_equal(border & ~mask, full & ~mask)


def test_stitching_masks_resize_and_float():
    fg = disc(64, (32, 32), 16).astype(np.float32)
    ms = stitching_masks(fg, 128)
    assert ms["mask"].shape == (128, 128)
    assert abs(ms["mask"].sum() - np.pi * 32 ** 2) < 0.05 * np.pi * 32 ** 2


def test_track_landmark_masks_fill_gap_frames():
    lm = np.repeat(face_landmarks()[None], 4, 0)
    quads = np.repeat(ffhq_quad(lm[0])[None], 4, 0)
    lm[1] = np.nan  # interpolated frame: uses its nearest neighbour's landmarks
    valid = np.array([True, True, True, False])
    m = track_landmark_masks(lm, quads, valid, 64)
    assert m.shape == (4, 64, 64)
    np.testing.assert_array_equal(m[1], m[0])
    assert m[0].any() and not m[3].any()


@pytest.mark.parametrize("res", [64, 1024])
def test_masks_at_demo_and_ffhq_resolutions(res):
    ms = stitching_masks(disc(res, (res // 2, res // 2), res // 4), res)
    assert ms["full_mask"].sum() > ms["mask"].sum()


def test_bisenet_path_matches_parsing():
    bisenet = pytest.importorskip("stitch.models.bisenet")
    import torch

    from stitch.masks import bisenet_foreground

    labels = np.arange(19)[None].repeat(3, 0)
    np.testing.assert_array_equal(foreground_from_parsing(labels), bisenet.foreground_from_parsing(labels))
    torch.manual_seed(0)
    net = bisenet.BiSeNet(bisenet.N_CLASSES).eval()
    crops = np.random.default_rng(0).integers(0, 256, (1, 64, 64, 3), dtype=np.uint8)
    fg = bisenet_foreground(net, crops)
    assert fg.shape == (1, 64, 64) and fg.dtype == bool
    np.testing.assert_array_equal(fg, foreground_from_parsing(bisenet.parse_faces(net, crops)))
    assert bisenet_foreground(net, crops[:0]).shape == (0, 64, 64)
