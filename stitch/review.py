"""Stage ``review``: an offline HTML page per video to watch the source and its edits in sync, and an index page.

``results/{video}/review.html`` (:func:`run`) is one self-contained file (no CDN, no server: open it from disk):
the original and the picked edit side by side plus a grid of every edit, all in synchronised playback (one
play/pause/seek, frame steps); an edit picker per method; a strength slider over an edit's sweep videos (config
``sweeps``: the reconstruction at 0, the sweep edits, the edit itself at 1) that swaps the video and keeps the
playhead; per-frame curves (identity similarity to the source, probe age / P(male) / smile of the source and the
edit, and every ``seam_*`` column of the metrics CSV) in inline SVG with a cursor on the playhead. The per-frame
data is embedded as JSON; the videos are relative links to ``results/{video}/encode/{method}/*.mp4``. The page's
HTML, CSS and JavaScript live in ``stitch/review_assets/`` and are inlined here.

The source video: a relative link when it lies inside the results folder (the demo clip), else rule
``review_source`` (:func:`run_source`) re-encodes it to ``results/{video}/review/source.mp4`` with the same
writer as the edits (H.264 at the exact fps from frame 0, the source audio), so every video of the page has the
same timestamps and a codec the browser plays, whatever the input's container or codec.

``results/review.html`` (:func:`run_index`): links to every video's page with its facts and a table of the
summary metrics per method and edit.
"""

from __future__ import annotations

import html
import json
import logging
import math
import os
from pathlib import Path

import pandas as pd

from stitch.atomic import write_text
from stitch.errors import StitchError
from stitch.video import iter_frames, write_video

log = logging.getLogger(__name__)

ASSETS = Path(__file__).with_name("review_assets")

#: curve panels: (key, title, edit column, source column or None); seam_* columns are added when present
CURVES = (
    ("identity", "identity similarity to the source (cosine)", "id_cos", None),
    ("age", "probe age (years)", "age_edit", "age_src"),
    ("p_male", "probe P(male)", "p_male_edit", "p_male_src"),
    ("smile", "smile score", "smile_edit", "smile_src"),
)
SEAM_PREFIX = "seam_"
#: the summary numbers the index shows (metrics JSON keys)
INDEX_COLUMNS = ("tl_id", "tg_id", "id_dist", "age_delta", "p_male_delta", "smile_delta", "seam_mse", "seam_grad")


def _facts(info_json) -> dict:
    info = json.loads(Path(info_json).read_text())
    return {k: info[k] for k in ("fps_num", "fps_den", "num_frames", "width", "height", "has_audio")}


def _rel(target, page) -> str:
    """``target`` as a URL path relative to the folder of ``page`` (both relative to the same working dir)."""
    rel = os.path.relpath(Path(target).resolve(), Path(page).resolve().parent)
    return Path(rel).as_posix()


def _finite(values) -> list:
    """Floats rounded to 5 significant digits, None for NaN/inf (JSON has no NaN)."""
    return [float(f"{v:.5g}") if v is not None and math.isfinite(v) else None for v in values]


def curve_panels(columns) -> list[dict]:
    """The curve panels of a page whose metrics CSVs have ``columns`` (the seam panels only when present)."""
    panels = [{"key": k, "title": t, "edit": e, "src": s} for k, t, e, s in CURVES if e in columns]
    panels += [{"key": c, "title": f"seam error: {c}", "edit": c, "src": None}
               for c in sorted(columns) if c.startswith(SEAM_PREFIX)]
    return panels


def read_curves(csv, num_frames: int) -> dict[str, list]:
    """The per-frame columns of one metrics CSV the page draws: {column: [value or None] * num_frames}."""
    df = pd.read_csv(csv)
    if len(df) != num_frames:
        raise StitchError(f"{csv}: {len(df)} rows, the video has {num_frames} frames; rerun rule metrics")
    wanted = {c for _, _, e, s in CURVES for c in (e, s) if c} | {c for c in df.columns if c.startswith(SEAM_PREFIX)}
    return {c: _finite(pd.to_numeric(df[c], errors="coerce").to_numpy(float)) for c in sorted(wanted & set(df.columns))}


def page_data(video: str, info_json, source, layout: dict, out_html) -> dict:
    """Everything the page's script needs (embedded as JSON): video facts, links relative to the page, curves.

    ``layout``: {"methods": [...], "edits": [base edits incl. "_recon"], "sweeps": {edit: [[multiplier, name]]},
    "videos" / "side_by_side" / "metrics": {method: {edit name: path}} over every edit name incl. sweeps}."""
    facts = _facts(info_json)
    clips, columns = {}, set()
    for method in layout["methods"]:
        clips[method] = {}
        for name, path in layout["videos"][method].items():
            curves = read_curves(layout["metrics"][method][name], facts["num_frames"])
            columns |= set(curves)
            sbs = layout.get("side_by_side", {}).get(method, {}).get(name)
            clips[method][name] = {"video": _rel(path, out_html), "curves": curves,
                                   "side_by_side": _rel(sbs, out_html) if sbs else None}
    for edit, rows in layout["sweeps"].items():
        missing = [n for _, n in rows if any(n not in clips[m] for m in clips)]
        if missing:
            raise StitchError(f"review layout: sweep {edit!r} names edits without videos {missing}")
    return {"video": video, **facts, "source": _rel(source, out_html), "methods": list(layout["methods"]),
            "edits": list(layout["edits"]), "sweeps": {e: [[float(m), n] for m, n in r] for e, r in layout["sweeps"].items()},
            "clips": clips, "panels": curve_panels(columns),
            "index": _rel(layout["index"], out_html) if layout.get("index") else None}


def render_page(data: dict) -> str:
    """The self-contained page: the template with its CSS, script and the JSON data inlined."""
    blob = json.dumps(data, separators=(",", ":"), allow_nan=False).replace("</", "<\\/")
    page = (ASSETS / "review.html").read_text()
    for key, value in (("TITLE", html.escape(f"Stitch review: {data['video']}")), ("CSS", (ASSETS / "review.css").read_text()),
                       ("JS", (ASSETS / "review.js").read_text()), ("DATA", blob)):
        page = page.replace(f"/*{key}*/", value)
    return page


def run(video: str, info_json, source, layout: dict, out_html) -> dict:
    """Rule ``review``: write ``results/{video}/review.html``; returns the embedded data."""
    data = page_data(video, info_json, source, layout, out_html)
    write_text(out_html, render_page(data))
    n = sum(len(c) for c in data["clips"].values())
    log.info("wrote %s: %d clips of %d frames, %d curve panels, source %s", out_html, n, data["num_frames"],
             len(data["panels"]), data["source"])
    return data


def run_source(video, info_json, audio, out_mp4) -> None:
    """Rule ``review_source``: the source as H.264 + its audio at the exact fps (the page's original)."""
    from stitch.encode import source_facts, writer_args

    info, audio_path = source_facts(info_json, audio)
    args = writer_args(info)
    n = write_video(out_mp4, iter_frames(video), audio_path=audio_path, total=info["num_frames"], **args)
    if n != info["num_frames"]:
        raise StitchError(f"{video}: decoded {n} frames, frames/info.json says {info['num_frames']}; rerun rule frames")
    log.info("wrote %s (%d frames at %s fps, audio=%s)", out_mp4, n, args["fps"], bool(audio_path))


def _summary_table(summaries: dict) -> str:
    rows = []
    for method, edits in summaries.items():
        for edit, path in edits.items():
            s = json.loads(Path(path).read_text())
            rows.append({"method": method, "edit": edit, **{k: s.get(k) for k in INDEX_COLUMNS}})
    df = pd.DataFrame(rows).dropna(axis=1, how="all")
    return df.to_html(index=False, float_format=lambda v: f"{v:.4g}", na_rep="", border=0)


def run_index(pages: dict, infos: dict, summaries: dict, out_html) -> None:
    """Rule ``review_index``: ``results/review.html`` over every video (``pages``/``infos``: {video: path},
    ``summaries``: {video: {method: {edit: metrics json}}})."""
    parts = []
    for video, page in pages.items():
        f = _facts(infos[video])
        fps = f["fps_num"] / f["fps_den"]
        parts.append(f"<section><h2><a href='{html.escape(_rel(page, out_html))}'>{html.escape(video)}</a></h2>"
                     f"<p>{f['num_frames']} frames at {fps:.3f} fps, {f['width']}x{f['height']}, "
                     f"{'with' if f['has_audio'] else 'no'} audio</p>{_summary_table(summaries.get(video, {}))}</section>")
    page = (ASSETS / "index.html").read_text()
    page = page.replace("/*CSS*/", (ASSETS / "review.css").read_text()).replace("<!--VIDEOS-->", "\n".join(parts))
    write_text(out_html, page)
    log.info("wrote %s over %d videos", out_html, len(pages))
