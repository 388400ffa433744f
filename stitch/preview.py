"""Stage ``preview``: a quick look at every configured edit before the long run (no PTI, no stitching).

On a few keyframes spread evenly over the largest face track, the aligned crops (:func:`stitch.crop.crop_face`,
only those frames) are inverted with the pack's e4e encoder, every edit (incl. sweeps, at full strength: time
ranges are not applied) is rendered with the pack's generator and pasted back with the landmark masks of
:mod:`stitch.masks` and the paste stage's feathered alpha (:mod:`stitch.paste`, honouring ``paste.mode``). The
result is one contact sheet per video: a row per keyframe, columns source | reconstruction | each edit, a square
tile around the face; ``layout.json`` beside it says where each tile is. An edit with targets (:mod:`stitch.targets`)
is first calibrated on these keyframes (e4e pivots, the pack's generator, :func:`calibrate_targets`); its column
title shows the probe reading reached and the target.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import cv2
import numpy as np

from stitch.atomic import atomic_path, write_json
from stitch.crop import crop_face
from stitch.errors import StitchError

log = logging.getLogger(__name__)

TILE = 192  # px, each tile of the sheet
LABEL_W, TITLE_H, GAP = 96, 24, 4  # px: row label column, column title bar, gap between tiles
DPI = 100


def pick_keyframes(valid: np.ndarray, n: int) -> np.ndarray:
    """``n`` frame indices spread evenly over the frames where ``valid`` (T,) is True (first and last included)."""
    idx = np.flatnonzero(np.asarray(valid, bool))
    if len(idx) == 0:
        return idx
    return np.unique(idx[np.round(np.linspace(0, len(idx) - 1, min(n, len(idx)))).astype(int)])


def face_box(quad: np.ndarray, shape, pad: float = 0.15) -> tuple[int, int, int, int]:
    """Square (x0, y0, x1, y1) around a face quad with ``pad`` margin, inside a frame of ``shape``."""
    h, w = shape[:2]
    lo, hi = quad.min(axis=0), quad.max(axis=0)
    side = int(round(min((hi - lo).max() * (1 + 2 * pad), h, w)))
    cx, cy = (lo + hi) / 2
    x0 = int(np.clip(round(cx - side / 2), 0, w - side))
    y0 = int(np.clip(round(cy - side / 2), 0, h - side))
    return x0, y0, x0 + side, y0 + side


def tile(frame: np.ndarray, box, size: int = TILE) -> np.ndarray:
    """The ``box`` of ``frame`` resized to size x size (area averaging)."""
    x0, y0, x1, y1 = box
    return cv2.resize(np.ascontiguousarray(frame[y0:y1, x0:x1]), (size, size), interpolation=cv2.INTER_AREA)


def read_keyframes(video, keys: np.ndarray) -> np.ndarray:
    """The frames ``keys`` (sorted) of a video as (K, H, W, 3) uint8, decoding only up to the last one."""
    from stitch.video import iter_frames

    want, out = {int(k) for k in keys}, {}
    for t, frame in enumerate(iter_frames(video)):
        if t in want:
            out[t] = frame
        if t >= max(want):
            break
    missing = sorted(want - set(out))
    if missing:
        raise StitchError(f"{video}: has no frame {missing[0]} although the alignment has one; rerun frames/align")
    return np.stack([out[int(k)] for k in keys])


def keyframe_alphas(landmarks: np.ndarray, quads: np.ndarray, valid: np.ndarray, res: int) -> np.ndarray:
    """Paste alphas (F, K, R, R) float32: the landmark FALLBACK foreground dilated as the stage ``masks`` does."""
    from stitch.masks import stitching_masks, track_landmark_masks

    out = np.zeros(valid.shape + (res, res), np.float32)
    for f in range(valid.shape[0]):
        fg = track_landmark_masks(landmarks[f], quads[f], valid[f], res)
        for k in np.flatnonzero(valid[f]):
            out[f, k] = stitching_masks(fg[k], res)["full_mask"]
    return out


def invert_faces(pack, crops: np.ndarray, valid: np.ndarray, device="cpu") -> np.ndarray:
    """(F, K, L, C) e4e pivots of the valid crops (zeros elsewhere)."""
    from stitch.invert import invert_crops

    enc = pack.encoder(device)
    pivots = np.zeros(valid.shape + (enc.cfg.num_ws, enc.cfg.w_dim), np.float32)
    for f in range(valid.shape[0]):
        pivots[f, valid[f]] = invert_crops(enc, crops[f][valid[f]], device=device, progress=False)
    return pivots


def render_faces(pack, pivots: np.ndarray, valid: np.ndarray, edits: dict, device="cpu") -> dict[str, np.ndarray]:
    """{"_recon" and each edit: (F, K, R, R, 3) uint8}: the pivots, edited and rendered by the pack's generator."""
    from stitch.edit import apply_edit
    from stitch.tensors import render_tracks

    G = pack.generator(device)
    latents = {"_recon": pivots}
    latents.update({name: apply_edit(pivots, pack.directions, factors) for name, factors in edits.items()})
    return {name: render_tracks(lambda f: G, w, valid, pack.resolution) for name, w in latents.items()}


def contact_sheet(rows: list[tuple[str, list[np.ndarray]]], titles: list[str], out_png) -> dict:
    """Tiles (rows of equally sized uint8 images) placed pixel-exact (matplotlib ``figimage``, no resampling) under
    column titles, each row labelled on the left. Returns the layout: {"tile", "x": [...], "y": [...]}."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    size = rows[0][1][0].shape[0]
    xs = [LABEL_W + c * (size + GAP) for c in range(len(titles))]
    title_h = TITLE_H * max(t.count("\n") + 1 for t in titles)  # a target's title has a second line
    ys = [title_h + r * (size + GAP) for r in range(len(rows))]
    width, height = xs[-1] + size + GAP, ys[-1] + size + GAP
    fig = plt.figure(figsize=(width / DPI, height / DPI), dpi=DPI, facecolor="white")
    for c, title in enumerate(titles):
        fig.text((xs[c] + size / 2) / width, 1 - (title_h / 2) / height, title, ha="center", va="center", fontsize=9)
    for r, (label, images) in enumerate(rows):
        fig.text(6 / width, 1 - (ys[r] + size / 2) / height, label, ha="left", va="center", fontsize=8)
        for c, img in enumerate(images):
            fig.figimage(img, xo=xs[c], yo=height - ys[r] - size, origin="upper")
    with atomic_path(out_png) as tmp:
        fig.savefig(tmp, dpi=DPI, format="png")
    plt.close(fig)
    return {"tile": size, "x": xs, "y": ys, "width": width, "height": height}


def calibrate_targets(pack, frames, quads, alphas, pivots, keys, targets: dict, edits: dict, sweeps: dict,
                      probe_path, settings: dict, feather: bool, mode: str, device="cpu") -> tuple[dict, dict]:
    """Edits with targets (:mod:`stitch.targets`) calibrated on the preview's keyframes with the e4e pivots and the
    pack's generator (:func:`stitch.calibrate.calibrate_edit`; the full run calibrates with the PTI generator, so
    its factors differ). ``edits``: raw factors of every edit; ``sweeps``: {sweep: [edit, multiplier]}. Returns
    (every edit's factors, {edit: column title suffix})."""
    from stitch.attributes import AttributeProbe
    from stitch.calibrate import calibrate_edit
    from stitch.configs import CalibrateConfig
    from stitch.keyframe_edits import KeyframeEdits
    from stitch.targets import describe, describe_reading

    factors, titles = {name: dict(f) for name, f in edits.items()}, {}
    if not targets:
        return factors, titles
    data = {"keys": keys, "frames": frames, "quads": quads[0], "alphas": alphas[0], "pivots": pivots[0]}
    kf = KeyframeEdits(data, pack.generator(device), pack.directions, AttributeProbe.load(probe_path), feather,
                       mode, device)
    cfg = CalibrateConfig.from_settings(settings)
    found = {}
    for name, spec in targets.items():
        doc = calibrate_edit(kf, edits[name], spec, cfg, name)
        found[name], factors[name] = doc["calibrated_factors"], doc["factors"]
        titles[name] = "; ".join(f"{describe_reading(k, t['reached_value'])} ({describe(k, t['target'])})"
                                 for k, t in doc["targets"].items())
    for sweep, (name, mult) in sweeps.items():
        factors[sweep].update({d: f * mult for d, f in found[name].items()})
    return factors, titles


def run(video, info_json, tracks_npz, quads_npz, pack_dir, edits: dict, out_png, out_json, keyframes: int = 5,
        feather: bool = True, mode: str = "generator", device="cpu", targets: dict | None = None,
        sweeps: dict | None = None, probe_path=None, calibrate: dict | None = None) -> None:
    """Stage ``preview``: ``out_png`` (contact sheet) and ``out_json`` (keyframes, columns, tile positions).

    ``edits``: raw factors of every edit; ``targets``: {edit: its targets} of the edits that have some, calibrated
    here (:func:`calibrate_targets`, ``probe_path`` the attribute probe, ``calibrate`` its settings; ``sweeps``:
    {sweep edit: [edit, multiplier]} of their sweeps); their column titles show reached (target)."""
    from stitch.packs import Pack
    from stitch.paste import PASTE_MODES, feather_radius, paste_video
    from stitch.stagefiles import Quads, Tracks

    if mode not in PASTE_MODES:
        raise StitchError(f"paste.mode = {mode!r} is not one of {', '.join(PASTE_MODES)}; fix config.yaml")
    info = json.loads(Path(info_json).read_text())
    fps = info["fps_num"] / info["fps_den"]
    q, tracks, pack = Quads.load(quads_npz), Tracks.load(tracks_npz), Pack.open(pack_dir)
    keys = pick_keyframes(q.valid[0], keyframes)
    if len(keys) == 0:
        raise StitchError(f"{quads_npz}: the largest face track has no aligned frame; nothing to preview")
    frames = read_keyframes(video, keys)
    res, quads, valid = pack.resolution, q.quads[:, keys], q.valid[:, keys]
    crops = np.zeros(valid.shape + (res, res, 3), np.uint8)
    for f, k in zip(*np.nonzero(valid)):
        crops[f, k] = crop_face(frames[k], quads[f, k], res)
    alphas = keyframe_alphas(tracks.landmarks[q.track_ids][:, keys], quads, valid, res)
    pivots = invert_faces(pack, crops, valid, device)
    edits, reached = calibrate_targets(pack, frames, quads, alphas, pivots, keys, targets or {}, edits, sweeps or {},
                                       probe_path, calibrate or {}, feather, mode, device)
    faces = render_faces(pack, pivots, valid, edits, device)
    radius = feather_radius(res) if feather else 0
    bases = faces["_recon"] if mode == "detail" else None
    columns = {"source": frames,
               "reconstruction": np.stack(list(paste_video(frames, faces["_recon"], quads, alphas, valid, radius)))}
    for name in edits:
        columns[name] = np.stack(list(paste_video(frames, faces[name], quads, alphas, valid, radius, bases)))
    boxes = [face_box(quads[0, k], frames.shape[1:3]) for k in range(len(keys))]
    rows = [(f"frame {t}\n{t / fps:.2f} s", [tile(col[k], boxes[k]) for col in columns.values()])
            for k, t in enumerate(keys)]
    titles = [f"{c}\n{reached[c]}" if c in reached else c for c in columns]
    layout = contact_sheet(rows, titles, out_png)
    write_json(out_json, {"keyframes": [int(t) for t in keys], "times": [float(t / fps) for t in keys],
                          "columns": list(columns), "boxes": boxes, "paste_mode": mode, "targets": reached,
                          "factors": edits, **layout})
    log.info("preview of %d edit(s) on %d keyframes %s -> %s", len(edits), len(keys), keys.tolist(), out_png)
