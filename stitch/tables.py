"""Stage ``tables``: the metric summaries of every video × method × edit and the stage timings as CSV tables.

* ``metrics.csv`` — one row per video × method × edit (``_recon`` = the method's reconstruction): TL-ID, TG-ID,
  identity distance to the source, the method's reconstruction PSNR / SSIM (/ LPIPS), attribute-probe deltas
  (age years, P(male), smile score) and seconds per frame of every stage that produced that video
  (``spf_<stage>``; shared stages such as landmarks count in every row, ``spf_pipeline`` is their sum without
  the metrics themselves), and the generator work per frame per edit (``steps_per_frame``: tuning steps,
  ``forwards_per_frame``: forward-only renders; stitch.work; PTI, shared by a video's edits, divided over them).
* ``methods.csv`` — one row per method, means over videos: edits' TL-ID / TG-ID / identity distance, the
  reconstruction's TL-ID / PSNR / SSIM, pipeline seconds per frame.
* ``timings.csv`` — long format: video, method, edit, stage, the Snakemake benchmark it came from, seconds.

Timings come from the rules' ``benchmark:`` files (``results/{video}/benchmarks/*.tsv``, column ``s``).
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import numpy as np
import pandas as pd

from stitch.atomic import atomic_path, write_text

log = logging.getLogger(__name__)

STAGES = ("frames", "landmarks", "align", "crop", "masks", "invert", "pti", "edit", "render", "paste", "encode",
          "metrics")
PIPELINE = STAGES[:-1]


def stage_benchmarks(method: str, edit: str) -> dict[str, list[str]]:
    """Benchmark file stems (without ``.tsv``) whose seconds make up each stage of one method's edited video.

    ``render`` is the method's own face stage: stitching (STIT), the PTI reconstruction (``_recon`` of STIT and
    no_stitch), the baseline renders; pti_frame's per-frame PTI (one job for all its edits) counts as ``pti``.
    """
    recon = edit == "_recon"
    b: dict[str, list[str]] = {s: [s] for s in ("frames", "landmarks", "align", "crop", "masks", "invert")}
    b["pti"] = ["pti"] if method in ("stit", "no_stitch") else ["baseline_pti_frame"] if method == "pti_frame" else []
    b["edit"] = [] if recon else [f"edit_{edit}"]
    if method in ("stit", "no_stitch") and recon:
        b["render"] = ["recon"]
    elif method == "stit":
        b["render"] = [f"stitching_{edit}"]
    elif method in ("e4e", "no_stitch"):
        b["render"] = [f"baseline_{method}_{edit}"]
    else:
        b["render"] = []
    b["paste"] = [f"paste_{method}_{edit}"]
    b["encode"] = [f"encode_{method}_{edit}"]
    b["metrics"] = ["describe_source", "metrics_source", f"describe_{method}_{edit}", f"metrics_{method}_{edit}"]
    return b


def read_benchmark(path) -> float:
    """Wall-clock seconds of a Snakemake benchmark TSV (mean over repeats); NaN when missing. (Its ``cpu_time`` is
    sampled every 30 s after a job's first 15 s and misses up to 30 s of the end: :func:`job_cpu_seconds`.)"""
    path = Path(path)
    if not path.is_file():
        return float("nan")
    df = pd.read_csv(path, sep="\t")
    return float(df["s"].mean()) if len(df) else float("nan")


def job_files(folder, stem: str, suffix: str) -> list[Path]:
    """The file ``<stem><suffix>`` of a job, or the files of all its shard jobs (``<stem>_0000<suffix>`` ...)."""
    path = Path(folder) / f"{stem}{suffix}"
    shards = sorted(Path(folder).glob(f"{stem}_[0-9][0-9][0-9][0-9]{suffix}"))
    return [path] if path.is_file() or not shards else shards


def job_seconds(bench_dir, stem: str) -> float:
    """Wall seconds of the job ``stem``, or of all its shard jobs summed; NaN when missing."""
    return float(sum(read_benchmark(f) for f in job_files(bench_dir, stem, ".tsv")))


def logged_number(path, pattern: str) -> float:
    """The number of the last match of ``pattern`` (one group) in a log file; NaN when there is none."""
    path = Path(path)
    found = re.findall(pattern, path.read_text(errors="replace")) if path.is_file() else []
    return float(found[-1]) if found else float("nan")


def job_cpu_seconds(log_dir, stem: str) -> float:
    """CPU seconds of the job ``stem`` (or its shard jobs summed) from the ``CPU time <s> s`` line stitch.smk ends
    each job's log with (getrusage: exact); NaN when missing."""
    return float(sum(logged_number(f, r"CPU time ([\d.]+) s") for f in job_files(log_dir, stem, ".log")))


def timings(bench_dir, video: str, method: str, edit: str) -> pd.DataFrame:
    rows = []
    for stage, stems in stage_benchmarks(method, edit).items():
        for stem in stems:
            rows.append({"video": video, "method": method, "edit": edit, "stage": stage, "benchmark": stem,
                         "seconds": job_seconds(bench_dir, stem)})
    return pd.DataFrame(rows)


def read_work(path) -> dict | None:
    """The ``work`` record (stitch.work) in a stage's stats: a JSON file or a crops ``.npz``'s ``stats`` member."""
    path = Path(path)
    if not path.is_file():
        return None
    if path.suffix == ".npz":
        with np.load(path, allow_pickle=False) as z:
            stats = json.loads(str(z["stats"])) if "stats" in z.files else {}
    else:
        stats = json.loads(path.read_text())
    return stats.get("work")


def work_columns(summaries: list[dict], work: dict | None) -> pd.DataFrame:
    """Generator steps and forwards per frame per edit of every row (work shared by a video's edits divided over
    them); NaN where a stage recorded no work."""
    from stitch.work import per_frame_per_edit

    rows = []
    for s in summaries:
        key = f"{s['video']}/{s['method']}/{s['edit']}"
        records = [read_work(f) for f in (work or {}).get("files", {}).get(key, [])]
        steps = forwards = float("nan")
        if records and all(r is not None for r in records):
            steps, forwards = per_frame_per_edit(records, s["frames"], work["edits"])
        rows.append({"video": s["video"], "method": s["method"], "edit": s["edit"],
                     "steps_per_frame": steps, "forwards_per_frame": forwards})
    return pd.DataFrame(rows)


def build(summaries: list[dict], bench_dirs: dict[str, str], work: dict | None = None,
          ) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(metrics, methods, timings) tables from the metric summaries, the benchmark folders per video and the
    stages' work records (``work``: {"files": {"video/method/edit": [stats files]}, "edits": n})."""
    metrics = pd.DataFrame(summaries)
    metrics = metrics.drop(columns=[c for c in ("notes",) if c in metrics])
    tim = pd.concat([timings(bench_dirs[s["video"]], s["video"], s["method"], s["edit"]).assign(frames=s["frames"])
                     for s in summaries], ignore_index=True)
    tim["s_per_frame"] = tim["seconds"] / tim["frames"]
    per_stage = (tim.groupby(["video", "method", "edit", "stage"], sort=False)["s_per_frame"]
                 .sum(min_count=1).unstack("stage"))
    per_stage = per_stage.reindex(columns=list(STAGES))
    per_stage["pipeline"] = per_stage[list(PIPELINE)].sum(axis=1, min_count=1)
    per_stage.columns = [f"spf_{c}" for c in per_stage.columns]
    metrics = metrics.merge(per_stage.reset_index(), on=["video", "method", "edit"], how="left")
    metrics = metrics.merge(work_columns(summaries, work), on=["video", "method", "edit"], how="left")
    lead = ["video", "method", "edit", "frames", "frames_used", "steps_per_frame", "forwards_per_frame",
            "spf_pipeline", "tl_id", "tg_id", "id_dist", "recon_psnr",
            "recon_ssim", "recon_lpips", "age_delta", "p_male_delta", "smile_delta", "arcface_tl_id", "arcface_tg_id"]
    cols = [c for c in lead if c in metrics] + [c for c in metrics if c not in lead]
    metrics = metrics[cols]

    edits = metrics[metrics["edit"] != "_recon"]
    recon = metrics[metrics["edit"] == "_recon"]
    agg = {"edit_tl_id": edits.groupby("method", sort=False)["tl_id"].mean(),
           "edit_tg_id": edits.groupby("method", sort=False)["tg_id"].mean(),
           "edit_id_dist": edits.groupby("method", sort=False)["id_dist"].mean(),
           "recon_tl_id": recon.groupby("method", sort=False)["tl_id"].mean(),
           "recon_tg_id": recon.groupby("method", sort=False)["tg_id"].mean(),
           "recon_id_dist": recon.groupby("method", sort=False)["id_dist"].mean()}
    for k in ("recon_psnr", "recon_ssim", "recon_lpips"):
        if k in metrics:
            agg[k] = recon.groupby("method", sort=False)[k].mean()
    agg["spf_pipeline"] = edits.groupby("method", sort=False)["spf_pipeline"].mean()
    agg["steps_per_frame"] = edits.groupby("method", sort=False)["steps_per_frame"].mean()
    agg["forwards_per_frame"] = edits.groupby("method", sort=False)["forwards_per_frame"].mean()
    methods = pd.DataFrame(agg)
    methods.insert(0, "videos", metrics.groupby("method", sort=False)["video"].nunique())
    methods.index.name = "method"
    return metrics, methods.reset_index(), tim


def markdown(df: pd.DataFrame, floatfmt: str = ".4g") -> str:
    """A GitHub markdown table (no extra dependency)."""
    def cell(v):
        if isinstance(v, (float, np.floating)):
            return "" if np.isnan(v) else format(float(v), floatfmt)
        return str(v)

    lines = ["| " + " | ".join(map(str, df.columns)) + " |", "|" + "---|" * len(df.columns)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join(lines)


HTML_COLUMNS = ["video", "method", "edit", "frames_used", "tl_id", "tg_id", "id_dist", "recon_psnr", "recon_ssim",
                "recon_lpips", "age_delta", "p_male_delta", "smile_delta", "target", "target_reached", "target_met", "arcface_tl_id", "arcface_tg_id",
                "steps_per_frame", "spf_pti", "spf_render", "spf_pipeline", "spf_metrics"]


def html_page(metrics: pd.DataFrame, methods: pd.DataFrame) -> str:
    """The tables as one small HTML page (what the report shows inline; the CSVs hold every column)."""
    style = ("<style>body{font-family:sans-serif;font-size:13px;margin:12px}table{border-collapse:collapse;"
             "margin-bottom:18px}th,td{border:1px solid #ccc;padding:3px 6px;text-align:right}"
             "th{background:#eee}td:nth-child(-n+3){text-align:left}</style>")
    main = metrics[[c for c in HTML_COLUMNS if c in metrics]]
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'>{style}</head><body>"
            "<h3>Per video × method × edit</h3>"
            "<p>TL-ID / TG-ID: 1.0 = as coherent as the source; id_dist: dlib descriptor distance to the source frame; "
            "recon_*: the method's reconstruction at crop resolution; *_delta: attribute probe, edit − source; "
            "spf_*: seconds per frame (benchmarks). <i>_recon</i> rows: the reconstruction without an edit. "
            "target / target_reached: an edit's target in probe units (config edits) and what the video reached; "
            "target_met: the calibration reached it on its keyframes within the factor and identity limits.</p>"
            + main.to_html(index=False, float_format=lambda v: f"{v:.4g}", na_rep="")
            + "<h3>Means per method</h3>"
            + methods.to_html(index=False, float_format=lambda v: f"{v:.4g}", na_rep="")
            + "</body></html>\n")


def run(summary_jsons: list[str], bench_dirs: dict[str, str], out_metrics, out_methods, out_timings,
        out_html=None, work: dict | None = None) -> None:
    summaries = [json.loads(Path(p).read_text()) for p in summary_jsons]
    metrics, methods, tim = build(summaries, bench_dirs, work)
    for df, path in ((metrics, out_metrics), (methods, out_methods), (tim, out_timings)):
        with atomic_path(path) as tmp:
            df.to_csv(tmp, index=False, float_format="%.6g")
    if out_html is not None:
        write_text(out_html, html_page(metrics, methods))
    log.info("tables: %d rows (%d videos, methods %s)\n%s", len(metrics), metrics["video"].nunique(),
             sorted(metrics["method"].unique()), markdown(methods))
