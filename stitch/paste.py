"""Paste back: un-align edited crops into the original frames (inverse of :func:`stitch.crop.crop_face`).

The crop is warped crop -> frame with the homography ``perspective_coeffs(crop_corners(S), quad)`` and
composited with premultiplied alpha, so frame pixels the (warped) alpha does not reach stay bit-identical.

Two modes (setting ``paste.mode``): ``generator`` pastes the method's rendered face as it is (STIT; with a low
resolution generator the face is an up-scaled blur); ``detail`` pastes only the edit's change, the edited render
minus the method's reconstruction render, onto the source frame, so the face keeps the source's full-resolution
detail and an edit that changes nothing leaves the frame exactly as it was.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from stitch.crop import crop_corners, perspective_coeffs

#: STIT: outer mask dilation 50 px at 1024; feathering radius = dilation / 2.
FEATHER_RADIUS_1024 = 25
#: paste.mode values: the generator's face (STIT) or the edit's change on the source's detail.
PASTE_MODES = ("generator", "detail")


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


def _roi(shape, quad: np.ndarray):
    """(x0, y0, x1, y1) of the quad's bounding box (1 px margin) clipped to a frame of ``shape``; None if empty."""
    h, w = shape[:2]
    lo = np.floor(quad.min(axis=0)).astype(int) - 1
    hi = np.ceil(quad.max(axis=0)).astype(int) + 2
    x0, y0, x1, y1 = max(lo[0], 0), max(lo[1], 0), min(hi[0], w), min(hi[1], h)
    return None if x1 <= x0 or y1 <= y0 else (x0, y0, x1, y1)


def _warp_premultiplied(premul: np.ndarray, quad: np.ndarray, roi) -> tuple[np.ndarray, np.ndarray]:
    """Warp crop-space (S, S, C + 1) float32 planes (colour premultiplied by the last plane, the alpha) into the
    ROI of ``quad``; returns (colour (h, w, C), alpha (h, w, 1)), alpha clipped to [0, 1] and to the quad.

    A quad much smaller than the crop first shrinks the planes by area averaging (as :func:`crop_face` does the
    other way). Bilinear sampling reaches half a crop pixel past the quad: the alpha is clipped to the quad so
    the face region is exactly it."""
    x0, y0, x1, y1 = roi
    size = premul.shape[0]
    qsize = min(np.hypot(*(quad[3] - quad[0])), np.hypot(*(quad[1] - quad[0])))
    shrink = int(np.floor(size / max(qsize, 1.0) * 0.5))
    if shrink > 1:
        small = max(1, int(round(size / shrink)))
        premul = cv2.resize(premul, (small, small), interpolation=cv2.INTER_AREA)
    hmat = perspective_coeffs(crop_corners(premul.shape[0]), quad - [x0, y0])  # crop -> ROI
    warped = cv2.warpPerspective(premul, hmat, (x1 - x0, y1 - y0), flags=cv2.INTER_LINEAR,
                                 borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    if warped.ndim == 2:
        warped = warped[..., None]
    inside = np.zeros((y1 - y0, x1 - x0), np.uint8)
    cv2.fillConvexPoly(inside, np.round(quad - [x0, y0]).astype(np.int32), 1)
    return warped[..., :-1], np.clip(warped[..., -1:], 0.0, 1.0) * inside[..., None]


def _check_paste_args(frame, crop, quad, alpha_crop, base):
    frame = np.asarray(frame)
    assert frame.ndim == 3 and frame.shape[2] == 3 and frame.dtype == np.uint8, (frame.shape, frame.dtype)
    crop = np.asarray(crop)
    size = crop.shape[0]
    assert crop.shape == (size, size, 3), crop.shape
    assert base is None or np.shape(base) == crop.shape, (np.shape(base), crop.shape)
    quad = np.asarray(quad, np.float64)
    assert quad.shape == (4, 2), quad.shape
    alpha = np.ones((size, size), np.float32) if alpha_crop is None else np.asarray(alpha_crop, np.float32)
    assert alpha.shape == (size, size), alpha.shape
    return frame, crop, quad, alpha


def paste_face(
    frame: np.ndarray, crop: np.ndarray, quad: np.ndarray, alpha_crop: np.ndarray | None = None,
    base: np.ndarray | None = None,
) -> np.ndarray:
    """Composite ``crop`` (S, S, 3) uint8 back into ``frame`` (H, W, 3) uint8 at ``quad`` (4, 2).

    ``alpha_crop`` (S, S) in [0, 1] (default all ones) is the opacity in crop space. The crop and alpha are
    warped to the frame (bilinear, premultiplied alpha), only inside the quad's bounding box.

    ``base`` None (mode ``generator``, STIT): ``out = frame (1 - a) + a warp(crop)``. ``base`` (S, S, 3) uint8,
    the method's reconstruction crop (mode ``detail``): only the edit's change is pasted,
    ``out = frame + a (warp(crop) - warp(base))`` — the warp is linear, so the difference is warped once; the
    frame keeps its own full-resolution detail and ``crop == base`` returns the frame exactly.
    Returns a new uint8 frame; pixels outside the quad or with warped alpha 0 are exactly the input's.
    """
    frame, crop, quad, alpha = _check_paste_args(frame, crop, quad, alpha_crop, base)
    out = frame.copy()
    roi = _roi(frame.shape, quad) if np.isfinite(quad).all() else None
    if roi is None:
        return out
    colour = crop.astype(np.float32) if base is None else crop.astype(np.float32) - np.asarray(base, np.float32)
    premul = np.concatenate([colour * alpha[..., None], alpha[..., None]], axis=2)
    warped, a = _warp_premultiplied(premul, quad, roi)
    x0, y0, x1, y1 = roi
    region = out[y0:y1, x0:x1]
    under = region.astype(np.float32) if base is not None else region.astype(np.float32) * (1.0 - a)
    comp = np.clip(np.rint(under + warped), 0, 255).astype(np.uint8)
    touched = a[..., 0] > 0
    region[touched] = comp[touched]
    return out


def frame_alpha(shape, crop_alpha: np.ndarray, quad: np.ndarray) -> np.ndarray:
    """The paste's opacity in the frame: (H, W) float32 in [0, 1] of a crop-space alpha (S, S) warped to ``quad``
    exactly as :func:`paste_face` warps it (0 outside the quad)."""
    out = np.zeros(shape[:2], np.float32)
    quad = np.asarray(quad, np.float64)
    roi = _roi(shape, quad) if np.isfinite(quad).all() else None
    if roi is None:
        return out
    _, a = _warp_premultiplied(np.asarray(crop_alpha, np.float32)[..., None], quad, roi)
    x0, y0, x1, y1 = roi
    out[y0:y1, x0:x1] = a[..., 0]
    return out


def _as_alpha(a) -> np.ndarray:
    a = np.asarray(a)
    return a.astype(np.float32) / 255.0 if a.dtype == np.uint8 else a.astype(np.float32, copy=False)


def paste_video(frames, crops, quads, alphas, valid, feather_px: int = 0, bases=None, active=None):
    """Paste per-frame crops back into an iterable of frames; yields the composited frames.

    ``crops`` (T, S, S, 3), ``quads`` (T, 4, 2), ``alphas`` (T, S, S) float in [0, 1] or uint8 0..255 (None =
    opaque), ``valid`` (T,) bool. Several faces: a leading face axis on all four (F, T, ...); they are pasted in
    order F-1 .. 0 so face 0 (the largest track) ends on top. ``feather_px`` > 0 feathers each alpha with
    :func:`feather`. ``bases`` (same shape as ``crops``, or None): the reconstruction crops of mode ``detail``
    (see :func:`paste_face`). ``active`` (T,) bool or None (all): the frames the edit changes (its time
    envelope > 0). Invalid and inactive frames (and frames past T) pass through unchanged (the same array).
    """
    valid = np.asarray(valid, bool)
    if valid.ndim == 1:
        crops, quads, valid = crops[None], quads[None], valid[None]
        alphas = None if alphas is None else alphas[None]
        bases = None if bases is None else bases[None]
    n_faces, n_t = valid.shape
    for t, frame in enumerate(frames):
        out = np.asarray(frame)
        if t < n_t and (active is None or active[t]):
            for f in reversed(range(n_faces)):
                if not valid[f, t]:
                    continue
                a = None if alphas is None else _as_alpha(alphas[f][t])
                if a is not None and feather_px > 0:
                    a = feather(a, feather_px)
                out = paste_face(out, crops[f][t], quads[f][t], a, None if bases is None else bases[f][t])
        yield out


def load_inputs(crops_npz, quads_npz, masks_npz, mode: str = "generator", recon_npz=None, shard: int = 0,
                shard_frames: int | None = None) -> dict:
    """What :func:`paste_video` needs for one shard: crops, quads, alphas, valid and (mode ``detail``) the
    reconstruction crops as ``bases`` (``crops_npz``, ``masks_npz``, ``recon_npz``: the shard's files, or the
    whole video's without ``shard_frames``; ``quads_npz``: the whole video's). A bad mode or a missing/mismatched
    reconstruction is one-line StitchError."""
    from stitch.errors import StitchError
    from stitch.shards import shard_of
    from stitch.stagefiles import FaceCrops, Masks, Quads

    if mode not in PASTE_MODES:
        raise StitchError(f"paste.mode = {mode!r} is not one of {', '.join(PASTE_MODES)}; fix config.yaml or the "
                          "samples.tsv column paste_mode")
    data, q, m = FaceCrops.load(crops_npz), Quads.load(quads_npz), Masks.load(masks_npz, ("full_mask",))
    n = data.valid.shape[1]
    quads = shard_of(q.quads, shard, shard_frames, n, quads_npz)
    out = {"crops": data.crops, "quads": quads, "alphas": m["full_mask"],
           "valid": data.valid & shard_of(q.valid, shard, shard_frames, n, quads_npz), "bases": None}
    if mode == "detail":
        if recon_npz is None:
            raise StitchError(f"{crops_npz}: paste.mode detail needs the method's reconstruction crops (recon input)")
        recon = FaceCrops.load(recon_npz)
        if recon.crops.shape != out["crops"].shape or not np.array_equal(recon.valid, data.valid):
            raise StitchError(f"{recon_npz}: reconstruction crops/valid faces do not match {crops_npz}; rerun both")
        out["bases"] = recon.crops
    return out


def pasted_frames(video, info: dict, d: dict, start: int, radius: int, active=None):
    """The pasted frames ``start ..`` of ``video`` (``info``: its ``frames/info.json``; ``d``: :func:`load_inputs`
    of the shard that starts at ``start``; ``active``: the shard's part of the edit's envelope)."""
    from stitch.segments import source_frames

    source = source_frames(video, info, start, start + d["valid"].shape[1])
    return paste_video(source, d["crops"], d["quads"], d["alphas"], d["valid"], radius, d["bases"], active)


def run(video, crops_npz, quads_npz, masks_npz, info_json, shard: int, shard_frames: int, out_segment,
        feather: bool = True, mode: str = "generator", recon_npz=None, envelope_json=None, recon_video=None,
        out_side_by_side=None, label: str = "edit") -> None:
    """Stage ``paste``, one shard: frames ``shard * shard_frames ..`` of ``video`` with the edited crops pasted
    back (``crops_npz``, ``masks_npz``, ``recon_npz``: the shard's files), written as an H.264 segment at the final
    codec settings (``stitch.segments``; no raw frames on disk), and with ``recon_video`` the side-by-side segment
    original | reconstruction | ``label``.

    ``mode`` ``generator`` pastes the method's face crops (STIT); ``detail`` pastes the edit's change (crops minus
    the method's reconstruction ``recon_npz``) onto the source frame (:func:`paste_face`). ``envelope_json``: the
    edit stage's per-frame envelope; frames where it is 0 are the source's."""
    import json
    import logging

    from stitch.edit_range import load_active
    from stitch.encode import side_by_side, writer_frame
    from stitch.errors import StitchError
    from stitch.progress import tqdm
    from stitch.segments import segment_writer, source_frames, write_segment
    from stitch.shards import shard_of, shard_range
    from stitch.video import iter_frames

    info = json.loads(Path(info_json).read_text())
    d = load_inputs(crops_npz, quads_npz, masks_npz, mode, recon_npz, shard, shard_frames)
    n_t = info["num_frames"]
    start, stop = shard_range(shard, n_t, shard_frames)
    if d["valid"].shape[1] != stop - start:
        raise StitchError(f"{crops_npz}: {d['valid'].shape[1]} frames, shard {shard} of {info_json} has "
                          f"{stop - start}; rerun the face stages")
    active = None if envelope_json is None else shard_of(load_active(envelope_json)[None], shard, shard_frames,
                                                         stop - start, envelope_json)[0]
    res = d["crops"].shape[-2]
    radius = feather_radius(res) if feather else 0
    with segment_writer(out_segment, info, start, stop - start) as out:
        for frame in tqdm(pasted_frames(video, info, d, start, radius, active), total=stop - start, desc="paste"):
            out.write(writer_frame(frame, info))
        if out.n != stop - start:
            raise StitchError(f"{video}: decoded {out.n} frames from frame {start}, the shard has {stop - start}")
    if out_side_by_side is not None:
        # after the segment, not beside it: two H.264 encoders side by side in one process do not always give the
        # same bytes for the same frames; the edit panel is the segment as written (as the reconstruction's is)
        panels = zip(source_frames(video, info, start, stop), source_frames(recon_video, info, start, stop),
                     iter_frames(out_segment))
        write_segment(out_side_by_side, (side_by_side(list(p), ["original", "reconstruction", label])
                                         for p in panels), info, start, stop - start)
    logging.getLogger(__name__).info("pasted %d face track(s) into frames %d-%d of %d (mode %s, feather radius %d px "
                                     "at %d)", d["valid"].shape[0], start, stop - 1, n_t, mode, radius, res)
