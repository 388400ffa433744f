"""Stage ``metrics``: how coherent, faithful and strong an edited video is, measured against its source.

The maths (pure, tested in ``tests/test_metrics.py``):

* **TL-ID / TG-ID** (Stitch it in Time, sec. 5): identity embeddings per frame, L2-normalised;
  ``S_src = E_src E_srcᵀ``, ``S_edit = E_edit E_editᵀ``, ``R = S_edit / S_src`` element-wise.
  TL-ID = mean of R over pairs of *adjacent* frames (the first off-diagonal), TG-ID = mean of R over all pairs
  i ≠ j. 1.0 means "as coherent as the source": the ratio cancels the source's own variation (pose, light,
  expression). Frames where either video has no face are dropped first; a pair counts as adjacent only when
  the two frames are adjacent in time (a dropped frame breaks the pair instead of joining its neighbours).
* **PSNR**, **SSIM** and LPIPS of the reconstruction at crop resolution: :mod:`stitch.quality`.

The stage (``run_source`` once per video, ``run`` per video × method × edit): dlib 128-d identity descriptors
and the attribute probe (``stitch.probes``: age in years, P(male), landmark smile score) on every frame of the
source and of the method's encoded edit; the descriptor distance to the source per frame; the method's
reconstruction quality at crop resolution (its ``_recon`` crops against ``crop/{shard}.npz`` on valid faces:
PSNR, SSIM, and LPIPS(alex) only when the pack ships LPIPS weights — otherwise the column is absent and the
summary says why); ArcFace TL-ID/TG-ID as extra columns only when the pack ships ArcFace weights.
With ``paste.mode: detail`` the ``_recon`` video is the source itself (a zero edit pastes nothing), so its identity
rows are the encoder's floor; the reconstruction PSNR/SSIM still compare the method's ``_recon`` crops.
One face per frame is measured: the largest one the detector finds (``faces: all`` videos are scored on their
largest face). With the source video and the masks, the seam columns of :mod:`stitch.seam`
(``seam_mse``, ``seam_grad``: means in the summary; ``sharpness_ratio``: median). Frames the pipeline left
unedited (no valid face quad; column ``edited`` = False) are measured like the others — they equal the source there.
"""

from __future__ import annotations

import itertools
import logging
import math
import time
from collections.abc import Iterable

import numpy as np
import pandas as pd

from stitch.atomic import atomic_path, save_npz, write_json
from stitch.errors import StitchError
from stitch.quality import shards_quality
from stitch.stagefiles import Quads

log = logging.getLogger(__name__)

# --------------------------------------------------------------------------------------------- identity maths


def unit_rows(E: np.ndarray) -> np.ndarray:
    """Rows scaled to unit L2 norm (float64); rows with NaN or zero norm become all-NaN."""
    E = np.asarray(E, np.float64)
    assert E.ndim == 2, E.shape
    n = np.linalg.norm(E, axis=1, keepdims=True)
    ok = np.isfinite(n) & (n > 0)
    return np.where(ok, E / np.where(ok, n, 1.0), np.nan)


def present(E: np.ndarray) -> np.ndarray:
    """(T,) bool: the frame has an embedding (a finite, non-zero row)."""
    E = np.asarray(E, np.float64)
    return np.isfinite(E).all(axis=1) & (np.abs(E).sum(axis=1) > 0)


def similarity(E: np.ndarray) -> np.ndarray:
    """(T, T) cosine similarities of the rows of E (normalised here)."""
    U = unit_rows(E)
    return U @ U.T


def identity_consistency(E_src: np.ndarray, E_edit: np.ndarray) -> dict:
    """TL-ID and TG-ID of an edited video against its source from per-frame embeddings (T, D) each.

    Rows that are NaN (no face) in either video are dropped. Returns ``tl_id``, ``tg_id`` (NaN when fewer than
    two frames / no adjacent pair remain), ``frames_used``, ``adjacent_pairs`` and, for reference, the raw mean
    cosines of the source and the edit (``src_adjacent``, ``src_global``, ``edit_adjacent``, ``edit_global``).
    """
    E_src, E_edit = np.asarray(E_src, np.float64), np.asarray(E_edit, np.float64)
    if E_src.shape != E_edit.shape:
        raise StitchError(f"identity_consistency: source {E_src.shape} and edit {E_edit.shape} embeddings differ")
    keep = np.flatnonzero(present(E_src) & present(E_edit))
    out = {"frames_used": int(len(keep)), "adjacent_pairs": 0}
    nan = float("nan")
    out.update(tl_id=nan, tg_id=nan, src_adjacent=nan, src_global=nan, edit_adjacent=nan, edit_global=nan)
    if len(keep) < 2:
        return out
    S_src, S_edit = similarity(E_src[keep]), similarity(E_edit[keep])
    R = S_edit / S_src
    off = ~np.eye(len(keep), dtype=bool)
    out.update(tg_id=float(R[off].mean()), src_global=float(S_src[off].mean()), edit_global=float(S_edit[off].mean()))
    i = np.flatnonzero(np.diff(keep) == 1)  # reduced indices i whose successor is the next frame in time
    if len(i):
        out.update(tl_id=float(R[i, i + 1].mean()), adjacent_pairs=int(len(i)),
                   src_adjacent=float(S_src[i, i + 1].mean()), edit_adjacent=float(S_edit[i, i + 1].mean()))
    return out


def adjacent_cosine(E: np.ndarray) -> np.ndarray:
    """(T,) cosine between frame t and frame t − 1 (NaN for t = 0 and where either face is missing)."""
    U = unit_rows(E)
    out = np.full(len(U), np.nan)
    if len(U) > 1:
        out[1:] = (U[1:] * U[:-1]).sum(axis=1)
    return out


def pair_cosine(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    """(T,) cosine between row t of A and row t of B (NaN where either is missing)."""
    return (unit_rows(A) * unit_rows(B)).sum(axis=1)


def descriptor_distances(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    """(T,) Euclidean distance of raw descriptors row by row (dlib: < 0.6 = same person); NaN where missing."""
    A, B = np.asarray(A, np.float64), np.asarray(B, np.float64)
    return np.linalg.norm(A - B, axis=1)


# --------------------------------------------------------------------------------------------- image maths


def _summary_value(v):
    if isinstance(v, (float, np.floating)):
        v = float(v)
        return None if math.isnan(v) else v  # inf is written as JSON Infinity (Python reads it back)
    if isinstance(v, np.integer):
        return int(v)
    return v


def describe_frames(frames: Iterable[np.ndarray], probe, arcface=None, progress: bool = False,
                    chunk: int = 8, detect_long_side: int = 0) -> dict[str, np.ndarray]:
    """Per-frame identity descriptors + attributes: ``desc`` (T, 128) raw dlib (NaN rows = no face), ``found``,
    ``landmarks`` (T, 68, 2), ``age``, ``p_male``, ``smile`` (NaN where no face), ``arcface`` when given.
    ``frames`` (an array or an iterator of decoded frames) is described ``chunk`` frames at a time, so a video is
    never held whole in memory. ``detect_long_side``: faces are detected on copies scaled down to it
    (``stitch.attributes.face_descriptor``; the video's ``landmarks.detect_long_side``)."""
    from stitch.probes import attributes, frame_descriptors
    from stitch.progress import tqdm

    parts = []
    frames = iter(tqdm(frames, desc="describe", unit="frame", disable=not progress, mininterval=10))
    while block := list(itertools.islice(frames, chunk)):
        desc, found, lm = frame_descriptors(np.stack(block), detect_long_side=detect_long_side)
        found = np.asarray(found, bool)
        part = {"desc": np.asarray(desc, np.float64), "found": found, "landmarks": np.asarray(lm, np.float64)}
        if arcface is not None:
            part["arcface"] = arcface.embed_many(block, landmarks=np.where(found[:, None, None], lm, np.nan),
                                                 progress=False)
        parts.append(part)
    if not parts:
        raise StitchError("describe_frames: no frames")
    out = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    arc = {"arcface": out.pop("arcface")} if "arcface" in out else {}
    return {**out, **attributes(probe, out["desc"], out["found"], out["landmarks"]), **arc}


def _arcface(pack_dir, device="cpu"):
    from stitch.packs import Pack

    pack = Pack.open(pack_dir)
    if not pack.has("arcface"):
        return None
    from stitch.dlib_models import dlib_landmarks
    from stitch.models.face_id import ArcFaceID

    return ArcFaceID.from_file(pack.path("arcface"), device, landmarks_of=dlib_landmarks)


def run_source(video, pack_dir, probe_path, out_npz, device="cpu", detect_long_side: int = 0) -> None:
    """Stage ``metrics_source``: descriptors and attributes of every source frame, computed once per video.

    ``probe_path``: the attribute probe's weights, its ``.json`` beside them (the rules pass the shipped
    ``resources/probes/attributes.safetensors`` as an input). ``detect_long_side``: as :func:`describe_frames`."""
    from stitch.probes import AttributeProbe
    from stitch.video import iter_frames

    t0 = time.time()
    d = describe_frames(iter_frames(video), AttributeProbe.load(probe_path), _arcface(pack_dir, device), True,
                        detect_long_side=detect_long_side)
    save_npz(out_npz, **d)
    n = len(d["found"])
    log.info("source: %d frames, face found on %d, %.2f s/frame", n, int(d["found"].sum()), (time.time() - t0) / n)


def per_frame_table(src: dict, edit: dict, edited: np.ndarray, quality: dict[str, np.ndarray]) -> pd.DataFrame:
    """The per-frame CSV: identity, probe deltas and reconstruction quality side by side."""
    T = len(src["found"])
    df = pd.DataFrame({"frame": np.arange(T), "found_src": src["found"], "found_edit": edit["found"],
                       "edited": edited})
    df["id_dist"] = descriptor_distances(src["desc"], edit["desc"])
    df["id_cos"] = pair_cosine(src["desc"], edit["desc"])
    df["adj_cos_src"] = adjacent_cosine(src["desc"])
    df["adj_cos_edit"] = adjacent_cosine(edit["desc"])
    df["adj_ratio"] = df["adj_cos_edit"] / df["adj_cos_src"]
    for k in ("age", "p_male", "smile"):
        df[f"{k}_src"], df[f"{k}_edit"] = src[k], edit[k]
        df[f"{k}_delta"] = edit[k] - src[k]
    for k, v in quality.items():
        df[f"recon_{k}"] = v
    if "arcface" in src and "arcface" in edit:
        df["arcface_cos"] = pair_cosine(src["arcface"], edit["arcface"])
        df["arcface_adj_ratio"] = adjacent_cosine(edit["arcface"]) / adjacent_cosine(src["arcface"])
    return df


def summarise(df: pd.DataFrame, src: dict, edit: dict, meta: dict, notes: list[str]) -> dict:
    """The summary JSON of one video × method × edit."""
    ident = identity_consistency(src["desc"], edit["desc"])
    both = df["found_src"] & df["found_edit"]
    s = {**meta, "frames": int(len(df)), "frames_face_src": int(df["found_src"].sum()),
         "frames_face_edit": int(df["found_edit"].sum()), "frames_edited": int(df["edited"].sum()), **ident}
    faces = df.loc[both]  # pandas' mean/max of no rows is NaN
    s["id_dist"] = float(faces["id_dist"].mean())
    s["id_dist_max"] = float(faces["id_dist"].max())
    for k in ("age", "p_male", "smile"):
        for col in (f"{k}_src", f"{k}_edit", f"{k}_delta"):
            s[col] = float(faces[col].mean())
    for k in ("psnr", "ssim", "lpips"):
        col = f"recon_{k}"
        if col in df:
            v = df[col].to_numpy()
            s[col] = float(np.mean(v[~np.isnan(v)])) if (~np.isnan(v)).any() else float("nan")
    for col in ("seam_mse", "seam_grad"):  # stitch.seam: mean over the frames with a pasted face
        if col in df:
            s[col] = float(df[col].mean())
    if "sharpness_ratio" in df:
        s["sharpness_ratio"] = float(df["sharpness_ratio"].median())
    if "arcface" in src and "arcface" in edit:
        a = identity_consistency(src["arcface"], edit["arcface"])
        s["arcface_tl_id"], s["arcface_tg_id"] = a["tl_id"], a["tg_id"]
    s["notes"] = notes
    return {k: _summary_value(v) for k, v in s.items()}


def run(source_npz, edited_video, crops_npz, recon_npz, quads_npz, pack_dir, probe_path, out_csv, out_json,
        meta: dict, device="cpu", seam: dict | None = None, calibration_json=None, detect_long_side: int = 0) -> dict:
    """Stage ``metrics`` for one video × method × edit: per-frame CSV and summary JSON. ``seam``: {"video": the
    source video, "masks": masks.npz, "feather": the paste setting} adds the seam and sharpness columns.
    ``probe_path``: as :func:`run_source`. ``calibration_json``: an edit with targets' ``calibrate/{edit}.json``
    adds the target vs reached columns (:func:`stitch.targets.report_columns`). ``detect_long_side``: as
    :func:`describe_frames` (the source's descriptors were found the same way)."""
    from stitch.packs import Pack
    from stitch.probes import AttributeProbe
    from stitch.video import iter_frames

    t0 = time.time()
    src = dict(np.load(source_npz))
    arcface = _arcface(pack_dir, device) if "arcface" in src else None
    edit = describe_frames(iter_frames(edited_video), AttributeProbe.load(probe_path), arcface, True,
                           detect_long_side=detect_long_side)
    if len(edit["found"]) != len(src["found"]):
        raise StitchError(f"{edited_video}: {len(edit['found'])} frames, the source has {len(src['found'])}")
    notes = []
    pack = Pack.open(pack_dir)
    lpips_net = pack.lpips(device)
    if lpips_net is None:
        notes.append(f"no LPIPS: pack {pack.name} ships no LPIPS weights (column recon_lpips omitted)")
    if arcface is None:
        notes.append(f"no ArcFace: pack {pack.name} ships no ArcFace weights (identity = dlib descriptors only)")
    quality = shards_quality(crops_npz, recon_npz, lpips_net)
    edited = Quads.load(quads_npz).valid.any(axis=0)
    df = per_frame_table(src, edit, edited, quality)
    if seam is not None:
        from stitch.seam import seam_table

        df = df.join(seam_table(seam["video"], edited_video, seam["masks"], quads_npz, seam["feather"]))
    summary = summarise(df, src, edit, meta, notes)
    if calibration_json is not None:
        import json
        from pathlib import Path

        from stitch.targets import report_columns

        faces = df["found_src"] & df["found_edit"]
        summary.update(report_columns(json.loads(Path(calibration_json).read_text()), summary,
                                      df.loc[faces, "p_male_edit"].to_numpy()))
    summary["seconds"] = round(time.time() - t0, 3)
    with atomic_path(out_csv) as tmp:
        df.to_csv(tmp, index=False, float_format="%.6g")
    write_json(out_json, summary, newline=True)
    log.info("%s: TL-ID %s, TG-ID %s, id dist %s, recon PSNR %s on %d/%d frames", meta, summary["tl_id"],
             summary["tg_id"], summary["id_dist"], summary.get("recon_psnr"), summary["frames_used"], len(df))
    return summary
