"""Stage ``figures``: the evaluation figures of one video (matplotlib, PNG).

* ``comparison_<edit>.png`` — frames over time (columns), one row per method plus the original, cropped around
  the face (the box follows the smoothed alignment quad), like the paper's comparison figure; row labels carry
  the method's TL-ID / TG-ID.
* ``alignment.png`` — face quad centre x / y and size over time: raw per-frame quads vs the temporally
  smoothed ones the pipeline uses.
* ``identity.png`` — per-frame identity similarity of adjacent frames (cosine of dlib descriptors of frame t
  and t − 1), the source and every method, one panel per edit.
* ``id_bars.png`` — TL-ID and TG-ID per method and edit (1.0 = as coherent as the source).
* ``sweep_<edit>.png`` — an edit at several strengths (rows) over time, labelled with the attribute probe's
  mean deltas (age years, P(male), smile score).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import cv2
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from stitch.atomic import atomic_path  # noqa: E402
from stitch.gaps import nearest_valid  # noqa: E402
from stitch.stagefiles import Quads  # noqa: E402

log = logging.getLogger(__name__)

METHOD_LABELS = {"stit": "STIT", "no_stitch": "no stitching", "pti_frame": "PTI per frame",
                 "e4e": "e4e only", "source": "original"}
METHOD_COLORS = {"source": "black", "stit": "tab:red", "no_stitch": "tab:orange", "pti_frame": "tab:purple",
                 "e4e": "tab:blue"}


def save_figure(fig, out_png) -> None:
    """Write ``fig`` as PNG (110 dpi) atomically and close it."""
    with atomic_path(out_png) as tmp:
        fig.savefig(tmp, dpi=110)
    plt.close(fig)


def _label(m: str) -> str:
    return METHOD_LABELS.get(m, m)


def _color(m: str, i: int = 0):
    return METHOD_COLORS.get(m, f"C{i}")


# --------------------------------------------------------------------------------------------- geometry


def quad_centre_size(quads: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(..., 4, 2) quads -> centres (..., 2) and side length (...) (mean of the four sides)."""
    c = quads.mean(axis=-2)
    sides = np.linalg.norm(quads - np.roll(quads, 1, axis=-2), axis=-1)
    return c, sides.mean(axis=-1)


def face_boxes(quads: np.ndarray, valid: np.ndarray, shape: tuple[int, int], pad: float = 0.1) -> np.ndarray:
    """(T, 4) int square boxes x0, y0, x1, y1 around the first face's smoothed quad, inside the frame.

    Frames without a valid face take the box of the nearest frame that has one; no face at all: the whole frame.
    """
    H, W = shape
    T = valid.shape[1]
    if not valid[0].any():
        s = min(H, W)
        return np.tile([(W - s) // 2, (H - s) // 2, (W - s) // 2 + s, (H - s) // 2 + s], (T, 1))
    q = quads[0, nearest_valid(valid[0])]
    lo, hi = q.min(axis=1), q.max(axis=1)
    c = (lo + hi) / 2
    half = (hi - lo).max(axis=1) * (0.5 + pad)
    half = np.minimum(half, min(H, W) / 2)
    x0 = np.clip(np.round(c[:, 0] - half), 0, W - 2 * half)
    y0 = np.clip(np.round(c[:, 1] - half), 0, H - 2 * half)
    side = np.round(2 * half)
    return np.stack([x0, y0, x0 + side, y0 + side], axis=1).astype(int)


def pick_frames(num_frames: int, n: int = 6) -> np.ndarray:
    """n frame indices spread evenly over the video (first and last included)."""
    return np.unique(np.round(np.linspace(0, num_frames - 1, min(n, num_frames))).astype(int))


def read_face_frames(video, idx: np.ndarray, boxes: np.ndarray, size: int = 160) -> list[np.ndarray]:
    """The frames ``idx`` of a video, cropped to ``boxes[idx]`` and resized to size x size (decoded once)."""
    from stitch.video import iter_frames

    want, out = set(int(i) for i in idx), {}
    for t, frame in enumerate(iter_frames(video)):
        if t in want:
            x0, y0, x1, y1 = boxes[t]
            out[t] = cv2.resize(frame[y0:y1, x0:x1], (size, size), interpolation=cv2.INTER_AREA)
        if t >= max(want):
            break
    return [out[int(i)] for i in idx]


# --------------------------------------------------------------------------------------------- figures


def image_grid(rows: list[tuple[str, list[np.ndarray]]], col_titles: list[str], out_png, title: str = "") -> None:
    """Rows of equally sized images with a label left of each row and titles above the columns."""
    n_rows, n_cols = len(rows), max(len(r[1]) for r in rows)
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(1.6 * n_cols + 1.6, 1.6 * n_rows + 0.5), squeeze=False)
    for r, (label, images) in enumerate(rows):
        for c in range(n_cols):
            ax = axes[r, c]
            ax.set_xticks([])
            ax.set_yticks([])
            for s in ax.spines.values():
                s.set_visible(False)
            if c < len(images):
                ax.imshow(images[c])
            if r == 0 and c < len(col_titles):
                ax.set_title(col_titles[c], fontsize=8)
        axes[r, 0].set_ylabel(label, fontsize=8, rotation=0, ha="right", va="center", labelpad=6)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.subplots_adjust(left=0.2, right=0.99, top=0.9 if title else 0.95, bottom=0.01, wspace=0.03, hspace=0.05)
    save_figure(fig, out_png)


def _id_text(summary: dict | None) -> str:
    if not summary or summary.get("tl_id") is None:
        return ""
    tg = summary.get("tg_id")
    return f"\nTL {summary['tl_id']:.3f} / TG {tg:.3f}" if tg is not None else f"\nTL {summary['tl_id']:.3f}"


def alignment_figure(quads_npz, out_png, fps: float, title: str = "") -> None:
    """Quad centre x / y and size over time: raw (per-frame landmarks) vs smoothed (jitter = RMS second difference), per selected face."""
    q = Quads.load(quads_npz)
    valid, ids = q.valid, q.track_ids
    c_s, s_s = quad_centre_size(q.quads)
    c_r, s_r = quad_centre_size(q.raw_quads)
    t = np.arange(valid.shape[1]) / fps
    fig, axes = plt.subplots(3, 1, figsize=(8, 6.5), sharex=True)
    for f in range(valid.shape[0]):
        m = np.where(valid[f], 1.0, np.nan)
        for ax, raw, smooth, name in zip(axes, (c_r[f, :, 0], c_r[f, :, 1], s_r[f]), (c_s[f, :, 0], c_s[f, :, 1], s_s[f]),
                                         ("centre x (px)", "centre y (px)", "quad size (px)")):
            jr, js = (float(np.sqrt(np.nanmean(np.diff(v * m, n=2) ** 2))) for v in (raw, smooth))
            ax.plot(t, raw * m, ".-", color=f"C{f}", lw=0.7, ms=3, alpha=0.6,
                    label=f"face {ids[f]} raw (jitter {jr:.2f} px)")
            ax.plot(t, smooth * m, "-", color=f"C{f}", lw=2, label=f"face {ids[f]} smoothed (jitter {js:.2f} px)")
            ax.set_ylabel(name)
    for ax in axes:
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="best")
    axes[-1].set_xlabel("time (s)   [jitter = RMS of the second difference over time, px/frame²]")
    fig.suptitle(f"{title}: alignment quads, raw vs temporally smoothed" if title else "alignment quads", fontsize=10)
    fig.tight_layout()
    save_figure(fig, out_png)


def identity_figure(per_frame: dict[str, dict[str, pd.DataFrame]], edits: list[str], out_png, fps: float,
                    title: str = "") -> None:
    """Adjacent-frame identity cosine over time, the source vs every method, one panel per edit."""
    n = len(edits)
    cols = min(n, 2)
    rows = int(np.ceil(n / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(6.5 * cols, 2.8 * rows), squeeze=False, sharey=True)
    for k, edit in enumerate(edits):
        ax = axes.flat[k]
        src_drawn = False
        for i, (method, dfs) in enumerate(per_frame.items()):
            df = dfs[edit]
            t = df["frame"].to_numpy() / fps
            if not src_drawn:
                ax.plot(t, df["adj_cos_src"], color=_color("source"), lw=2, label=_label("source"))
                src_drawn = True
            ax.plot(t, df["adj_cos_edit"], color=_color(method, i), lw=1.2, label=_label(method))
        ax.set_title("reconstruction (no edit)" if edit == "_recon" else f"edit: {edit}", fontsize=9)
        ax.grid(alpha=0.3)
        ax.set_xlabel("time (s)")
        ax.set_ylabel("cos(frame t, t−1)")
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=7, loc="lower left")
    fig.suptitle(f"{title}: identity similarity of adjacent frames (dlib descriptors)" if title else
                 "identity similarity of adjacent frames", fontsize=10)
    fig.tight_layout()
    save_figure(fig, out_png)


def id_bars_figure(summaries: pd.DataFrame, out_png, title: str = "") -> None:
    """Grouped bars: TL-ID and TG-ID per edit (groups) and method (bars)."""
    methods = list(dict.fromkeys(summaries["method"]))
    edits = list(dict.fromkeys(summaries["edit"]))
    fig, axes = plt.subplots(1, 2, figsize=(max(9, 1.6 * len(edits) * 2 + 1.5), 3.6))
    width = 0.8 / max(1, len(methods))
    for ax, key, name in zip(axes, ("tl_id", "tg_id"), ("TL-ID (adjacent frames)", "TG-ID (all frame pairs)")):
        vals = []
        for i, m in enumerate(methods):
            sub = summaries[summaries["method"] == m].set_index("edit")
            y = pd.to_numeric(sub[key], errors="coerce").reindex(edits).to_numpy(float)
            vals.append(y)
            x = np.arange(len(edits)) + (i - (len(methods) - 1) / 2) * width
            ax.bar(x, y, width, color=_color(m, i), label=_label(m))
            for xi, yi in zip(x, y):
                if np.isfinite(yi):
                    ax.text(xi, yi, f"{yi:.4f}", ha="center", va="bottom", fontsize=6, rotation=90)
        v = np.concatenate(vals)
        v = v[np.isfinite(v)]
        if len(v):  # zoom on the values: dlib's ratios sit close to 1
            span = max(float(v.max()), 1.0) - float(v.min())
            ax.set_ylim(float(v.min()) - max(0.002, 0.6 * span), max(float(v.max()), 1.0) + max(0.002, 0.35 * span))
        ax.axhline(1.0, color="black", lw=0.8, ls="--")
        ax.set_xticks(np.arange(len(edits)), ["recon" if e == "_recon" else e for e in edits], fontsize=8)
        ax.set_title(name, fontsize=9)
        ax.grid(axis="y", alpha=0.3)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, fontsize=8, loc="center right")
    fig.suptitle(f"{title}: identity coherence relative to the source (1.0 = as coherent as the source)" if title
                 else "identity coherence relative to the source", fontsize=10)
    fig.tight_layout(rect=(0, 0, 0.87, 1))
    save_figure(fig, out_png)


def _probe_text(s: dict | None) -> str:
    if not s:
        return ""
    parts = []
    for key, fmt, name in (("age_delta", "{:+.1f} y", "Δage"), ("p_male_delta", "{:+.2f}", "ΔP(male)"),
                           ("smile_delta", "{:+.3f}", "Δsmile")):
        if s.get(key) is not None:
            parts.append(f"{name} {fmt.format(s[key])}")
    return "\n" + "\n".join(parts) if parts else ""


# --------------------------------------------------------------------------------------------- the stage


def _flat(v) -> list[str]:
    """A named output that is one path or a list of paths, as a list."""
    return [str(v)] if isinstance(v, str) else [str(x) for x in v]


def run(video, info_json, quads_npz, layout: dict, outputs: dict, title: str = "") -> None:
    """All figures of one video. ``layout``: methods, edits, metric/summary/video paths per method and edit,
    the sweeps; ``outputs``: comparison (one per base edit), alignment, identity, id_bars, sweeps (one per
    swept edit)."""
    info = json.loads(Path(info_json).read_text())
    fps = float(info["fps_num"]) / float(info["fps_den"])
    methods, edits, base = layout["methods"], layout["edits"], layout["base_edits"]
    per_frame = {m: {e: pd.read_csv(layout["metrics"][m][e]) for e in edits} for m in methods}
    summaries = {m: {e: json.loads(Path(layout["summaries"][m][e]).read_text()) for e in edits} for m in methods}
    table = pd.DataFrame([s for m in methods for s in summaries[m].values()])

    q = Quads.load(quads_npz)
    from stitch.video import probe

    vi = probe(video)
    boxes = face_boxes(q.quads, q.valid, (vi.height, vi.width))
    idx = pick_frames(vi.num_frames)
    col_titles = [f"frame {t} ({t / fps:.2f} s)" for t in idx]
    source = read_face_frames(video, idx, boxes)

    for edit, png in zip(base, _flat(outputs["comparison"])):
        rows = [(_label("source"), source)]
        for m in methods:
            rows.append((_label(m) + _id_text(summaries[m][edit]), read_face_frames(layout["videos"][m][edit], idx, boxes)))
        image_grid(rows, col_titles, png, title=f"{title}: edit {edit!r}, methods compared over time")
    alignment_figure(quads_npz, outputs["alignment"], fps, title)
    identity_figure(per_frame, edits, outputs["identity"], fps, title)
    id_bars_figure(table, outputs["id_bars"], title)

    sm = layout["sweep_method"]
    for (edit, rows_spec), png in zip(layout["sweeps"].items(), _flat(outputs.get("sweeps", []))):
        rows = [(_label("source"), source)]
        for mult, name, path in rows_spec:
            s = summaries.get(sm, {}).get(name)
            label = f"×{mult:g}" + (" (reconstruction)" if name == "_recon" else "")
            rows.append((label + _probe_text(s), read_face_frames(path, idx, boxes)))
        image_grid(rows, col_titles, png, title=f"{title}: {edit!r} at several strengths ({_label(sm)})")
    log.info("figures of %s written (%d methods, %d edits)", title, len(methods), len(edits))

