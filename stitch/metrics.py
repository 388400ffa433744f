"""Stage ``metrics``: how coherent, faithful and strong an edited video is, measured against its source.

The maths (pure, tested in ``tests/test_metrics.py``):

* **TL-ID / TG-ID** (Stitch it in Time, sec. 5): identity embeddings per frame, L2-normalised;
  ``S_src = E_src E_srcᵀ``, ``S_edit = E_edit E_editᵀ``, ``R = S_edit / S_src`` element-wise.
  TL-ID = mean of R over pairs of *adjacent* frames (the first off-diagonal), TG-ID = mean of R over all pairs
  i ≠ j. 1.0 means "as coherent as the source": the ratio cancels the source's own variation (pose, light,
  expression). Frames where either video has no face are dropped first; a pair counts as adjacent only when
  the two frames are adjacent in time (a dropped frame breaks the pair instead of joining its neighbours).
* **PSNR**, **SSIM** and LPIPS of the reconstruction at crop resolution: :mod:`stitch.quality`.

The stage (``run_source`` once per video, ``run`` per video × method × edit) joins the per-shard data of
``stitch.describe`` (one job per shard of frames): dlib 128-d identity descriptors and the attribute probe
(``stitch.probes``: age in years, P(male), landmark smile score) on every frame of the
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

import logging
import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from stitch.atomic import atomic_path, save_npz, write_json
from stitch.errors import StitchError
from stitch.describe import QUALITY, SEAM, join
from stitch.stagefiles import Quads, shards_name

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
    U_src, U_edit = unit_rows(E_src[keep]), unit_rows(E_edit[keep])
    out.update(zip(("src_global", "edit_global", "tg_id"), _global_means(U_src, U_edit)))
    i = np.flatnonzero(np.diff(keep) == 1)  # reduced indices i whose successor is the next frame in time
    if len(i):
        s, e = ((U[i] * U[i + 1]).sum(axis=1) for U in (U_src, U_edit))
        out.update(tl_id=float((e / s).mean()), adjacent_pairs=int(len(i)), src_adjacent=float(s.mean()),
                   edit_adjacent=float(e.mean()))
    return out


def _global_means(U_src: np.ndarray, U_edit: np.ndarray, block: int = 256) -> tuple[float, float, float]:
    """Means of S_src, S_edit and R = S_edit / S_src over all pairs i != j of the unit rows, a block of rows at a
    time (memory: block × T, not T × T: 184 MB per matrix at 4,800 frames)."""
    n, sums = len(U_src), np.zeros(3)
    for a in range(0, n, block):
        s, e = U_src[a : a + block] @ U_src.T, U_edit[a : a + block] @ U_edit.T
        off = np.ones(s.shape, bool)
        off[np.arange(len(s)), np.arange(a, a + len(s))] = False
        s, e = s[off], e[off]
        sums += (s.sum(), e.sum(), (e / s).sum())
    return tuple(float(v) for v in sums / (n * (n - 1)))


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


def run_source(shards: Sequence, out_npz) -> None:
    """Stage ``metrics_source``: the source's ``describe_source`` shards (``stitch.describe``) joined into one
    ``source.npz``: descriptors and attributes of every source frame, shared by all edits of the video."""
    d = join(shards, "describe_source")
    save_npz(out_npz, **d)
    log.info("source: %d frames, face found on %d", len(d["found"]), int(d["found"].sum()))


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


def run(source_npz, describe_npz: Sequence, quads_npz, pack_dir, out_csv, out_json, meta: dict,
        calibration_json=None) -> dict:
    """Stage ``metrics`` for one video × method × edit: per-frame CSV and summary JSON from the source's
    descriptors (``metrics_source``) and the edited video's ``describe`` shards (``stitch.describe``: descriptors,
    reconstruction quality, seam columns). ``calibration_json``: an edit with targets' ``calibrate/{edit}.json``
    adds the target vs reached columns (:func:`stitch.targets.report_columns`)."""
    from stitch.packs import Pack

    src = dict(np.load(source_npz))
    edit = join(describe_npz, f"describe of {meta}")
    if len(edit["found"]) != len(src["found"]):
        raise StitchError(f"{shards_name(describe_npz)}: {len(edit['found'])} frames, the source has "
                          f"{len(src['found'])}; rerun describe")
    notes = []
    pack = Pack.open(pack_dir)
    if not pack.has_lpips:
        notes.append(f"no LPIPS: pack {pack.name} ships no LPIPS weights (column recon_lpips omitted)")
    if "arcface" not in edit:
        notes.append(f"no ArcFace: pack {pack.name} ships no ArcFace weights (identity = dlib descriptors only)")
    quality = {k[len(QUALITY):]: edit.pop(k) for k in [k for k in edit if k.startswith(QUALITY)]}
    seam = pd.DataFrame({k: edit.pop(k) for k in SEAM if k in edit})
    df = per_frame_table(src, edit, Quads.load(quads_npz).valid.any(axis=0), quality).join(seam)
    summary = summarise(df, src, edit, meta, notes)
    if calibration_json is not None:
        import json
        from pathlib import Path

        from stitch.targets import report_columns

        faces = df["found_src"] & df["found_edit"]
        summary.update(report_columns(json.loads(Path(calibration_json).read_text()), summary,
                                      df.loc[faces, "p_male_edit"].to_numpy()))
    with atomic_path(out_csv) as tmp:
        df.to_csv(tmp, index=False, float_format="%.6g")
    write_json(out_json, summary, newline=True)
    log.info("%s: TL-ID %s, TG-ID %s, id dist %s, recon PSNR %s on %d/%d frames", meta, summary["tl_id"],
             summary["tg_id"], summary["id_dist"], summary.get("recon_psnr"), summary["frames_used"], len(df))
    return summary
