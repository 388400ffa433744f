"""Paste back: un-align edited crops into the original frames (inverse of :func:`stitch.crop.crop_face`).

The crop is warped crop -> frame with the homography ``perspective_coeffs(crop_corners(S), quad)`` and
composited with premultiplied alpha, so frame pixels the (warped) alpha does not reach stay bit-identical.
"""

from __future__ import annotations

import cv2
import numpy as np

from stitch.crop import crop_corners, perspective_coeffs

#: STIT: outer mask dilation 50 px at 1024; feathering radius = dilation / 2.
FEATHER_RADIUS_1024 = 25


def feather(mask: np.ndarray, radius: int, sigma: float = 0.0) -> np.ndarray:
    """Soft-edged alpha (float32 in [0, 1]): erode ``mask`` by ``radius`` px (square kernel, outside the image
    counts as 0) then Gaussian-blur with a (2r+1)² kernel (``sigma`` 0 = OpenCV's default for that size).
    The result is 0 wherever ``mask`` is 0."""
    m = np.asarray(mask, np.float32)
    r = int(radius)
    if r <= 0:
        return np.clip(m, 0.0, 1.0)
    k = 2 * r + 1
    er = cv2.erode(m, np.ones((k, k), np.uint8), borderType=cv2.BORDER_CONSTANT, borderValue=0)
    out = cv2.GaussianBlur(er, (k, k), sigmaX=float(sigma), borderType=cv2.BORDER_CONSTANT)
    return np.clip(out, 0.0, 1.0) * (m > 0)


def feather_radius(resolution: int) -> int:
    return max(1, int(round(FEATHER_RADIUS_1024 * resolution / 1024)))


def paste_face(
    frame: np.ndarray, crop: np.ndarray, quad: np.ndarray, alpha_crop: np.ndarray | None = None,
) -> np.ndarray:
    """Composite ``crop`` (S, S, 3) uint8 back into ``frame`` (H, W, 3) uint8 at ``quad`` (4, 2).

    ``alpha_crop`` (S, S) in [0, 1] (default all ones) is the opacity in crop space. The crop and alpha are
    warped to the frame (bilinear, premultiplied alpha), only inside the quad's bounding box; a quad much
    smaller than the crop first shrinks it by area averaging (as :func:`crop_face` does the other way).
    Returns a new uint8 frame; pixels outside the quad or with warped alpha 0 are exactly the input's.
    """
    frame = np.asarray(frame)
    assert frame.ndim == 3 and frame.shape[2] == 3 and frame.dtype == np.uint8, (frame.shape, frame.dtype)
    crop = np.asarray(crop)
    size = crop.shape[0]
    assert crop.shape == (size, size, 3), crop.shape
    quad = np.asarray(quad, np.float64)
    assert quad.shape == (4, 2), quad.shape
    alpha = np.ones((size, size), np.float32) if alpha_crop is None else np.asarray(alpha_crop, np.float32)
    assert alpha.shape == (size, size), alpha.shape
    out = frame.copy()
    if not np.isfinite(quad).all():
        return out
    h, w = frame.shape[:2]
    lo = np.floor(quad.min(axis=0)).astype(int) - 1
    hi = np.ceil(quad.max(axis=0)).astype(int) + 2
    x0, y0 = max(lo[0], 0), max(lo[1], 0)
    x1, y1 = min(hi[0], w), min(hi[1], h)
    if x1 <= x0 or y1 <= y0:
        return out

    premul = np.concatenate([crop.astype(np.float32) * alpha[..., None], alpha[..., None]], axis=2)
    qsize = min(np.hypot(*(quad[3] - quad[0])), np.hypot(*(quad[1] - quad[0])))
    shrink = int(np.floor(size / max(qsize, 1.0) * 0.5))
    if shrink > 1:
        small = max(1, int(round(size / shrink)))
        premul = cv2.resize(premul, (small, small), interpolation=cv2.INTER_AREA)
    src = crop_corners(premul.shape[0])
    hmat = perspective_coeffs(src, quad - [x0, y0])  # crop -> ROI
    warped = cv2.warpPerspective(premul, hmat, (x1 - x0, y1 - y0), flags=cv2.INTER_LINEAR,
                                 borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    # bilinear sampling reaches half a crop pixel past the quad: clip to the quad so the face region is exactly it
    inside = np.zeros((y1 - y0, x1 - x0), np.uint8)
    cv2.fillConvexPoly(inside, np.round(quad - [x0, y0]).astype(np.int32), 1)
    a = np.clip(warped[..., 3:4], 0.0, 1.0) * inside[..., None]
    roi = out[y0:y1, x0:x1]
    comp = roi.astype(np.float32) * (1.0 - a) + warped[..., :3]
    comp = np.clip(np.rint(comp), 0, 255).astype(np.uint8)
    touched = a[..., 0] > 0
    roi[touched] = comp[touched]
    return out


def _as_alpha(a) -> np.ndarray:
    a = np.asarray(a)
    return a.astype(np.float32) / 255.0 if a.dtype == np.uint8 else a.astype(np.float32, copy=False)


def paste_video(frames, crops, quads, alphas, valid, feather_px: int = 0):
    """Paste per-frame crops back into an iterable of frames; yields the composited frames.

    ``crops`` (T, S, S, 3), ``quads`` (T, 4, 2), ``alphas`` (T, S, S) float in [0, 1] or uint8 0..255 (None =
    opaque), ``valid`` (T,) bool. Several faces: a leading face axis on all four (F, T, ...); they are pasted in
    order F-1 .. 0 so face 0 (the largest track) ends on top. ``feather_px`` > 0 feathers each alpha with
    :func:`feather`. Invalid frames (and frames past T) pass through unchanged.
    """
    valid = np.asarray(valid, bool)
    if valid.ndim == 1:
        crops, quads, valid = crops[None], quads[None], valid[None]
        alphas = None if alphas is None else alphas[None]
    n_faces, n_t = valid.shape
    for t, frame in enumerate(frames):
        out = np.asarray(frame)
        if t < n_t:
            for f in reversed(range(n_faces)):
                if not valid[f, t]:
                    continue
                a = None if alphas is None else _as_alpha(alphas[f][t])
                if a is not None and feather_px > 0:
                    a = feather(a, feather_px)
                out = paste_face(out, crops[f][t], quads[f][t], a)
        yield out


def run(video, crops_npz, quads_npz, masks_npz, out_npy, feather: bool = True) -> None:
    """Stage ``paste``: every frame of ``video`` with the edited crops pasted back -> (T, H, W, 3) uint8 .npy."""
    import logging
    from pathlib import Path

    from stitch.progress import tqdm

    from stitch.video import iter_frames

    data, q, m = np.load(crops_npz), np.load(quads_npz), np.load(masks_npz)
    crops, valid = data["crops"], data["valid"] & q["valid"]
    quads = q["quads"]
    alphas = m["full_mask"]
    res = crops.shape[-2]
    radius = feather_radius(res) if feather else 0
    n_t = valid.shape[1]
    tmp = Path(out_npy).with_name(Path(out_npy).stem + ".tmp.npy")
    arr = None
    t = -1
    frames = iter_frames(video)
    for t, frame in enumerate(tqdm(paste_video(frames, crops, quads, alphas, valid, radius), total=n_t, desc="paste")):
        if arr is None:
            arr = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=(n_t,) + frame.shape)
        if t >= n_t:
            raise ValueError(f"{video}: more frames than the {n_t} the crops have")
        arr[t] = frame
    assert t + 1 == n_t, f"{video}: decoded {t + 1} frames, crops have {n_t}"
    arr.flush()
    del arr
    tmp.replace(out_npy)
    logging.getLogger(__name__).info("pasted %d face track(s) into %d frames (feather radius %d px at %d)",
                                     valid.shape[0], n_t, radius, res)
