"""Face segmentation and the STIT stitching masks, in aligned-crop space.

Foreground = everything BiSeNet does not label background (0), cloth (16) or hat (18): face, hair, ears, neck.
Without BiSeNet weights a FALLBACK foreground is drawn from the 68 landmarks (jaw hull extended upward over
the forehead); it covers the face but not hair or neck.

Stitching masks (STIT, sizes given at 1024 px and scaled by resolution / 1024):
``full_mask`` = foreground dilated by 50 px (the pasted region); ``border_mask`` = full_mask - mask, plus the
foreground within 50 px of the crop edge (tuned to match the original frame); ``content_mask`` = mask -
border_mask (tuned to stay close to the edit).
"""

from __future__ import annotations

import logging

import cv2
import numpy as np

from stitch.crop import crop_corners, perspective_coeffs
from stitch.errors import StitchError
from stitch.gaps import nearest_valid

log = logging.getLogger(__name__)

#: BiSeNet (CelebAMask-HQ, 19 classes) labels that are not foreground: background, cloth, hat.
BACKGROUND_CLASSES = (0, 16, 18)
#: STIT defaults at 1024 px.
OUTER_DILATION_1024 = 50
BORDER_PIXELS_1024 = 50
#: Fallback: the forehead top lies this fraction of the eye-line-to-jaw distance above the eye line.
FOREHEAD_RATIO = 0.8


def foreground_from_parsing(parsing: np.ndarray) -> np.ndarray:
    """Bool foreground from a BiSeNet label map (..., H, W): every class except 0, 16 and 18 (same as
    ``stitch.models.bisenet.foreground_from_parsing``; kept here so the masks need no torch import)."""
    return ~np.isin(np.asarray(parsing), BACKGROUND_CLASSES)


def _apply_h(hmat: np.ndarray, pts: np.ndarray) -> np.ndarray:
    pts = np.asarray(pts, np.float64)
    p = np.concatenate([pts, np.ones(pts.shape[:-1] + (1,))], axis=-1) @ hmat.T
    return p[..., :2] / p[..., 2:3]


def landmarks_to_crop(landmarks: np.ndarray, quad: np.ndarray, size: int) -> np.ndarray:
    """Frame landmarks (..., 2) -> coordinates in the ``size`` crop of ``quad`` (the map :func:`crop_face` uses)."""
    h_crop_to_frame = perspective_coeffs(crop_corners(size), np.asarray(quad, np.float64))
    return _apply_h(np.linalg.inv(h_crop_to_frame), landmarks)


def landmark_polygon(lm: np.ndarray, forehead_ratio: float = FOREHEAD_RATIO) -> np.ndarray:
    """Convex hull (K, 2) of the jaw line, the brows and the jaw mirrored above the eye line (forehead)."""
    lm = np.asarray(lm, np.float64)
    assert lm.shape == (68, 2), lm.shape
    eye_l, eye_r = lm[36:42].mean(axis=0), lm[42:48].mean(axis=0)
    eye_avg = (eye_l + eye_r) * 0.5
    mouth = (lm[48] + lm[54]) * 0.5
    u = eye_r - eye_l
    u = u / max(np.hypot(*u), 1e-9)
    down = mouth - eye_avg
    down = down - u * (down @ u)
    down = down / max(np.hypot(*down), 1e-9)
    jaw = lm[0:17]
    depth = np.clip((jaw - eye_avg) @ down, 0.0, None)  # how far each jaw point lies below the eye line
    forehead = jaw - np.outer((1.0 + forehead_ratio) * depth, down)
    pts = np.concatenate([jaw, lm[17:27], forehead])
    return cv2.convexHull(pts.astype(np.float32)).reshape(-1, 2).astype(np.float64)


def landmark_mask(landmarks_in_crop: np.ndarray, size: int, forehead_ratio: float = FOREHEAD_RATIO) -> np.ndarray:
    """FALLBACK foreground (size, size) float32 in {0, 1} from crop-space landmarks: jaw hull + forehead."""
    hull = landmark_polygon(landmarks_in_crop, forehead_ratio)
    out = np.zeros((size, size), np.uint8)
    shift = 4
    cv2.fillConvexPoly(out, np.rint(hull * (1 << shift)).astype(np.int32), 1, lineType=cv2.LINE_8, shift=shift)
    return out.astype(np.float32)


def _scaled(px_1024: float, resolution: int) -> int:
    return max(1, int(round(px_1024 * resolution / 1024)))


def stitching_masks(
    foreground: np.ndarray, resolution: int, outer_dilation: float = OUTER_DILATION_1024,
    border_pixels: float = BORDER_PIXELS_1024,
) -> dict[str, np.ndarray]:
    """STIT masks from a foreground (S, S) bool/float (> 0.5 = foreground), at ``resolution`` px.

    ``outer_dilation`` and ``border_pixels`` are in 1024-px units. Returns float32 (R, R) maps in {0, 1}:
    ``mask`` (foreground), ``full_mask`` (mask dilated, square kernel as in STIT), ``border_mask``
    (full_mask - mask, plus mask within ``border_pixels`` of the crop edge), ``content_mask`` (mask - border).
    content ⊂ mask ⊂ full_mask; border ∪ content = full_mask; border ∩ content = ∅.
    """
    fg = np.asarray(foreground)
    res = int(resolution)
    if fg.shape != (res, res):
        fg = cv2.resize(fg.astype(np.float32), (res, res), interpolation=cv2.INTER_LINEAR)
    mask = (fg.astype(np.float32) > 0.5).astype(np.uint8)
    d = _scaled(outer_dilation, res)
    full = cv2.dilate(mask, np.ones((2 * d + 1, 2 * d + 1), np.uint8), borderType=cv2.BORDER_CONSTANT, borderValue=0)
    b = _scaled(border_pixels, res)
    edge = np.ones((res, res), bool)
    edge[b:res - b, b:res - b] = False
    border = ((full > 0) & (mask == 0)) | ((mask > 0) & edge)
    content = (mask > 0) & ~border
    f32 = lambda m: np.asarray(m, np.float32)  # noqa: E731
    return {"mask": f32(mask), "full_mask": f32(full), "border_mask": f32(border), "content_mask": f32(content)}


# ---------------------------------------------------------------- BiSeNet (stitch.models.bisenet, imported lazily)

def _load_bisenet(pack, device):
    """The pack's BiSeNet (``stitch.models.bisenet.load_bisenet``)."""
    from stitch.models.bisenet import load_bisenet

    return load_bisenet(pack.path("bisenet"), device=device)


def bisenet_foreground(model, crops: np.ndarray, batch: int = 4) -> np.ndarray:
    """Foreground (N, S, S) bool of crops (N, S, S, 3) uint8 via ``stitch.models.bisenet.parse_faces``
    (512² ImageNet-normalised input, labels resized back) and :func:`foreground_from_parsing`."""
    from stitch.models.bisenet import parse_faces

    if len(crops) == 0:
        return np.zeros((0,) + crops.shape[1:3], bool)
    return foreground_from_parsing(parse_faces(model, np.ascontiguousarray(crops, np.uint8), batch=batch))


def _fill_nearest(lm: np.ndarray) -> np.ndarray:
    """(T, 68, 2) with NaN frames -> each NaN frame takes the nearest frame that has landmarks."""
    ok = np.isfinite(lm).all(axis=(1, 2))
    if ok.all() or not ok.any():
        return lm
    return lm[nearest_valid(ok)]


def track_landmark_masks(landmarks: np.ndarray, quads: np.ndarray, valid: np.ndarray, size: int) -> np.ndarray:
    """FALLBACK foreground (T, S, S) float32 of one track: landmark masks in crop space; frames without
    landmarks (interpolated gaps) use the crop-space landmarks of the nearest frame that has them."""
    n = len(valid)
    crop_lm = np.full((n, 68, 2), np.nan)
    for t in np.flatnonzero(valid):
        if np.isfinite(landmarks[t]).all():
            crop_lm[t] = landmarks_to_crop(landmarks[t], quads[t], size)
    crop_lm = _fill_nearest(crop_lm)
    out = np.zeros((n, size, size), np.float32)
    for t in np.flatnonzero(valid):
        if np.isfinite(crop_lm[t]).all():
            out[t] = landmark_mask(crop_lm[t], size)
    return out


def run(crops_npz, tracks_npz, out_npz, method: str = "auto", pack=None, device="cpu", shard: int = 0,
        shard_frames: int | None = None) -> str:
    """Stage ``masks``, one shard (``crops_npz``: that shard's crops): mask/full_mask/border_mask/content_mask
    (F, T, R, R) uint8 (0..255) per face track.

    ``method``: 'bisenet' (pack must ship it), 'landmarks' (fallback) or 'auto' (BiSeNet when available).
    Returns the method used (also stored as ``method`` in the npz).
    """
    from stitch.packs import Pack
    from stitch.stagefiles import MASK_KINDS, Crops, Masks, Tracks

    from stitch.shards import shard_range

    data, tr = Crops.load(crops_npz), Tracks.load(tracks_npz)
    crops, valid, quads, ids = data.crops, data.valid, data.quads, data.track_ids
    n_faces, n_t, res = crops.shape[0], crops.shape[1], crops.shape[2]
    start, stop = shard_range(shard, tr.num_frames, shard_frames)
    if stop - start != n_t:
        raise StitchError(f"{crops_npz}: {n_t} frames, shard {shard} of {tracks_npz} has {stop - start}; rerun crop")
    model = None
    if method not in ("auto", "bisenet", "landmarks"):
        raise StitchError(f"masks.method must be auto, bisenet or landmarks, not {method!r}")
    if method != "landmarks":
        pk = Pack.open(pack) if pack is not None else None
        if pk is not None and pk.has("bisenet"):
            try:
                model = _load_bisenet(pk, device)
            except ImportError as e:
                if method == "bisenet":
                    raise StitchError(f"masks.method=bisenet but the BiSeNet code is unavailable ({e})") from None
                log.warning("BiSeNet code unavailable (%s): using the landmark FALLBACK masks", e)
        elif method == "bisenet":
            raise StitchError(f"masks.method=bisenet but pack {pack!r} has no bisenet weights; "
                              "use masks.method=auto or landmarks")
        else:
            log.warning("pack %r has no BiSeNet weights: using the landmark FALLBACK masks (face only, no hair/neck)",
                        pack)
    used = "bisenet" if model is not None else "landmarks"
    out = {k: np.zeros((n_faces, n_t, res, res), np.uint8) for k in MASK_KINDS}
    for f in range(n_faces):
        v = valid[f]
        if model is not None:
            fg = np.zeros((n_t, res, res), np.float32)
            fg[v] = bisenet_foreground(model, crops[f][v])
        else:
            fg = track_landmark_masks(tr.landmarks[int(ids[f])][start:stop], quads[f], v, res)
        for t in np.flatnonzero(v):
            for k, m in stitching_masks(fg[t], res).items():
                out[k][f, t] = np.rint(m * 255).astype(np.uint8)
        log.info("face %d: %s masks on %d frames, mean foreground %.1f%% of the crop", f, used, int(v.sum()),
                 100 * float(out["mask"][f][v].mean() / 255) if v.any() else 0.0)
    Masks(out, valid, used).save(out_npz)
    return used
