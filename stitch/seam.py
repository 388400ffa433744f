"""Seam and sharpness measures of a pasted video against its source (used by :mod:`stitch.metrics`).

Per frame, with ``a`` the paste's opacity in the frame (the feathered ``full_mask`` warped by the face quad, exactly
as ``stitch.paste`` warps it; several faces: the maximum):

* **band**: the paste's transition band, pixels with ``0 < a < 1``, plus a thin band of ``outside_px`` pixels
  just outside the pasted region (``a == 0`` but within ``outside_px`` of ``a > 0``).
* **seam_mse**: mean squared error (uint8 units², mean over RGB) between the output and the source frame in the band.
* **seam_grad**: the gradient the paste adds across the boundary, mean over the band of
  ``|∇(output − source)|`` (forward differences, RMS over RGB; intensity levels per pixel): a hard step of height
  ``c`` contributes ``c`` on the pixels beside it; a perfect paste gives 0 for both.
* **sharpness_ratio**: variance of the Laplacian of the grey image in the face core (``a`` ≈ 1), output / source
  (1 = as sharp as the source; an up-scaled low-resolution face is far below 1).
"""

from __future__ import annotations

from collections.abc import Iterator

import cv2
import numpy as np
import pandas as pd

#: width of the band just outside the pasted region, in frame pixels
OUTSIDE_PX = 3
#: the face core: opacity at least this
CORE_ALPHA = 0.999


def transition_band(alpha: np.ndarray, outside_px: int = OUTSIDE_PX) -> np.ndarray:
    """(H, W) bool: ``0 < alpha < 1`` plus the ``outside_px`` pixels just outside ``alpha > 0``."""
    alpha = np.asarray(alpha, np.float32)
    support = (alpha > 0).astype(np.uint8)
    k = 2 * int(outside_px) + 1
    near = cv2.dilate(support, np.ones((k, k), np.uint8)) > 0 if outside_px > 0 else support > 0
    return ((alpha > 0) & (alpha < 1)) | (near & (alpha == 0))


def _diff_gradient(d: np.ndarray) -> np.ndarray:
    """(H, W) magnitude of the forward-difference gradient of (H, W, C) ``d``, RMS over channels."""
    gx = np.zeros_like(d)
    gy = np.zeros_like(d)
    gx[:, :-1] = d[:, 1:] - d[:, :-1]
    gy[:-1] = d[1:] - d[:-1]
    return np.sqrt((gx ** 2 + gy ** 2).mean(axis=-1))


def laplacian_variance(img: np.ndarray, region: np.ndarray) -> float:
    """Variance of the Laplacian (3x3, grey) of an RGB uint8 image over a bool region (NaN when empty)."""
    if not region.any():
        return float("nan")
    grey = cv2.cvtColor(np.asarray(img, np.uint8), cv2.COLOR_RGB2GRAY).astype(np.float64)
    return float(cv2.Laplacian(grey, cv2.CV_64F, ksize=1)[region].var())


def frame_measures(out: np.ndarray, src: np.ndarray, alpha: np.ndarray, outside_px: int = OUTSIDE_PX) -> dict:
    """seam_mse, seam_grad and sharpness_ratio of one frame (NaN where there is no band / no face core)."""
    nan = float("nan")
    band = transition_band(alpha, outside_px)
    res = {"seam_mse": nan, "seam_grad": nan, "sharpness_ratio": nan}
    if band.any():
        ys, xs = np.nonzero(band)
        y0, y1 = max(ys.min() - 1, 0), ys.max() + 2
        x0, x1 = max(xs.min() - 1, 0), xs.max() + 2
        d = out[y0:y1, x0:x1].astype(np.float32) - src[y0:y1, x0:x1].astype(np.float32)
        b = band[y0:y1, x0:x1]
        res["seam_mse"] = float((d[b] ** 2).mean())
        res["seam_grad"] = float(_diff_gradient(d)[b].mean())
    core = np.asarray(alpha) >= CORE_ALPHA
    ref = laplacian_variance(src, core)
    if ref > 0:
        res["sharpness_ratio"] = laplacian_variance(out, core) / ref
    return res


def video_alphas(masks_npz, quads_npz, feather: bool, shape, start: int = 0) -> Iterator[np.ndarray]:
    """Yield per frame the paste's opacity (H, W) float32 (max over the face tracks; 0 where no face is pasted);
    ``masks_npz``: the masks' shard files (or one file), their first frame the video's frame ``start``."""
    from stitch.paste import feather as feather_alpha
    from stitch.paste import feather_radius, frame_alpha
    from stitch.stagefiles import Masks, Quads, shard_paths

    q = Quads.load(quads_npz)
    t = start
    for path in shard_paths(masks_npz):  # a shard's masks at a time
        full = Masks.load(path, ("full_mask",))["full_mask"]
        radius = feather_radius(full.shape[-1]) if feather else 0
        for local in range(full.shape[1]):
            a = np.zeros(shape[:2], np.float32)
            for f in np.flatnonzero(q.valid[:, t]):
                crop_alpha = full[f, local].astype(np.float32) / 255.0
                if radius > 0:
                    crop_alpha = feather_alpha(crop_alpha, radius)
                a = np.maximum(a, frame_alpha(shape, crop_alpha, q.quads[f, t]))
            yield a
            t += 1


def seam_table(source_video, edited_video, masks_npz, quads_npz, feather: bool, info: dict,
               frames: tuple[int, int]) -> pd.DataFrame:
    """Per-frame seam_mse, seam_grad, sharpness_ratio of an edited video against its source, frames = (start,
    stop) of both (``info``: the source's ``frames/info.json``, to seek; ``masks_npz``: the masks of exactly those
    frames, one shard's)."""
    from stitch.errors import StitchError
    from stitch.segments import source_frames
    from stitch.video import probe

    src_frames, out_frames = (source_frames(v, info, *frames) for v in (source_video, edited_video))
    size = probe(source_video)
    alphas = video_alphas(masks_npz, quads_npz, feather, (size.height, size.width), frames[0])
    rows = []
    for src, out in zip(src_frames, out_frames):
        if src.shape != out.shape:
            raise StitchError(f"{edited_video}: frame size {out.shape[:2]} differs from the source's {src.shape[:2]}")
        a = next(alphas, None)
        rows.append(frame_measures(out, src, a if a is not None else np.zeros(src.shape[:2], np.float32)))
    return pd.DataFrame(rows, columns=["seam_mse", "seam_grad", "sharpness_ratio"])
