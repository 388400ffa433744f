"""Paste modes compared: ``generator`` (STIT: the generator's face) vs ``detail`` (the edit's change on the source).

    python benchmarks/bench_paste.py [--frames 48] [--work results/bench_paste] [--videos talk_1 ...] [--cores 2]
                                     [--skip-run]

The first ``--frames`` frames of every video in ``../shared/data/videos`` (cut like ``bench_methods.py``, whose
helpers this reuses), pack demo, method stit, the edits of ``config/config.yaml`` plus ``to_male`` (gender +6) and
``to_female`` (gender -6). The workflow runs once with ``paste.mode: generator``; its videos and metrics are kept
under ``<work>/modes/generator/``; then only paste, encode and metrics rerun with ``paste.mode: detail`` (PTI and
stitching are shared) into ``<work>/modes/detail/``. Per video, mode and edit: face sharpness ratio (variance of
the Laplacian in the face core, output / source, median over frames), identity distance, TL-ID / TG-ID, probe
deltas (age, smile; gender flip rate of the edit towards the other sex), seam error (stitch.seam). A contact sheet
per video (rows: frames; columns: source | recon | edits, both modes) as ``<work>/<video>_sheet.png``; the tables
as markdown in ``<work>/table.md``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_methods import REPO, prepare, shared_videos, snakemake  # noqa: E402

from stitch.tables import markdown  # noqa: E402

MODES = ("generator", "detail")
GENDER_EDITS = {"to_male": {"gender": 6}, "to_female": {"gender": -6}}
SUMMARY_KEYS = ("sharpness_ratio", "id_dist", "tl_id", "tg_id", "age_delta", "smile_delta", "seam_mse", "seam_grad")


def bench_edits() -> dict:
    """The edits of the repo's config plus gender +-6."""
    return {**yaml.safe_load((REPO / "config" / "config.yaml").read_text())["edits"], **GENDER_EDITS}


def configure(work: Path, mode: str) -> None:
    """The work dir's config: the bench edits, method stit, the paste mode."""
    path = work / "config" / "config.yaml"
    cfg = yaml.safe_load(path.read_text())
    cfg.update(edits=bench_edits(), methods=["stit"])
    cfg["paste"]["mode"] = mode
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))


def run_mode(work: Path, videos: list[str], edits: list[str], mode: str, cores: int, force_paste: bool) -> None:
    targets = [f"results/{v}/metrics/stit/{e}.json" for v in videos for e in ("_recon", *edits)]
    snakemake(work, *targets, *(["--forcerun", "paste"] if force_paste else []), cores=cores)
    for v in videos:
        keep = work / "modes" / mode / v
        shutil.rmtree(keep, ignore_errors=True)
        keep.mkdir(parents=True)
        for e in ("_recon", *edits):
            shutil.copy(work / "results" / v / "encode" / "stit" / f"{e}.mp4", keep / f"{e}.mp4")
            for ext in ("csv", "json"):
                shutil.copy(work / "results" / v / "metrics" / "stit" / f"{e}.{ext}", keep / f"{e}.{ext}")


def other_sex_edit(frames: pd.DataFrame) -> str:
    return "to_female" if float(frames["p_male_src"].mean()) > 0.5 else "to_male"


def rows_of(work: Path, video: str, mode: str, edits: list[str]) -> list[dict]:
    keep = work / "modes" / mode / video
    other = other_sex_edit(pd.read_csv(keep / "_recon.csv"))
    rows = []
    for e in ("_recon", *edits):
        if e in GENDER_EDITS and e != other:
            continue
        s = json.loads((keep / f"{e}.json").read_text())
        df = pd.read_csv(keep / f"{e}.csv")
        ok = df["found_src"] & df["found_edit"]
        row = {"video": video, "mode": mode, "edit": "to_other_sex" if e == other else e,
               **{k: s.get(k) for k in SUMMARY_KEYS}}
        row["gender_flip"] = float(((df["p_male_edit"] > 0.5) != (df["p_male_src"] > 0.5))[ok].mean())
        rows.append(row)
    return rows


def strength(df: pd.DataFrame) -> pd.Series:
    """The probe's reading of each edit's strength (|age change|, smile change, gender flip rate)."""
    s = pd.Series(np.nan, index=df.index)
    age = df["edit"].isin(["older", "younger"])
    s[age] = df.loc[age, "age_delta"].abs()
    s[df["edit"] == "smile"] = df.loc[df["edit"] == "smile", "smile_delta"]
    s[df["edit"] == "young_smile"] = df.loc[df["edit"] == "young_smile", "age_delta"].abs()
    s[df["edit"] == "to_other_sex"] = df.loc[df["edit"] == "to_other_sex", "gender_flip"]
    return s


def verdict(table: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """Per-video bars and the per-edit probe strength ratio detail / generator."""
    edits = table[table["edit"] != "_recon"]
    per_video = edits.groupby(["video", "mode"])[["sharpness_ratio", "id_dist", "seam_mse"]].mean().unstack("mode")
    per_video.columns = [f"{k}_{m}" for k, m in per_video.columns]
    per_video = per_video.reset_index()
    st = edits.assign(strength=strength(edits)).groupby(["edit", "mode"])["strength"].mean().unstack("mode")
    st["ratio"] = st["detail"] / st["generator"]
    bars = {"detail sharpness >= 0.8 on every video": bool((per_video["sharpness_ratio_detail"] >= 0.8).all()),
            "detail id_dist < generator on every video":
                bool((per_video["id_dist_detail"] < per_video["id_dist_generator"]).all()),
            "probe edits weakened by <= 15 %": bool((st["ratio"] >= 0.85).all())}
    return per_video, st.reset_index(), bars


def face_box(quad: np.ndarray, shape) -> tuple[int, int, int, int]:
    lo, hi = quad.min(axis=0), quad.max(axis=0)
    c, half = (lo + hi) / 2, (hi - lo).max() / 2
    y0, x0 = int(max(c[1] - half, 0)), int(max(c[0] - half, 0))
    return y0, min(int(c[1] + half), shape[0]), x0, min(int(c[0] + half), shape[1])


def contact_sheet(work: Path, video: str, edits: list[str], out: Path, n_rows: int = 3) -> Path:
    """Rows: frames; columns: source | recon (generator) | every edit in generator then detail mode (face crops)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from stitch.video import read_frames

    src = read_frames(work / "inputs" / f"{video}.mp4")
    q = np.load(work / "results" / video / "align" / "quads.npz")
    other = other_sex_edit(pd.read_csv(work / "modes" / "generator" / video / "_recon.csv"))
    shown = [e for e in edits if e not in GENDER_EDITS or e == other]
    cols = [("source", src), ("recon\n(generator)", read_frames(work / "modes" / "generator" / video / "_recon.mp4"))]
    for mode in MODES:
        cols += [(f"{e}\n({mode})", read_frames(work / "modes" / mode / video / f"{e}.mp4")) for e in shown]
    valid = np.flatnonzero(q["valid"][0])
    idx = valid[np.linspace(0, len(valid) - 1, n_rows).round().astype(int)] if len(valid) else [0]
    fig, axes = plt.subplots(len(idx), len(cols), figsize=(1.6 * len(cols), 1.75 * len(idx)), squeeze=False)
    for r, t in enumerate(idx):
        y0, y1, x0, x1 = face_box(q["quads"][0, t], src.shape[1:3])
        for c, (name, frames) in enumerate(cols):
            ax = axes[r, c]
            ax.imshow(frames[t, y0:y1, x0:x1])
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(name, fontsize=7)
        axes[r, 0].set_ylabel(f"frame {t}", fontsize=7)
    fig.suptitle(f"{video}: paste.mode generator vs detail (demo pack, stit)", fontsize=9)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=48)
    ap.add_argument("--work", type=Path, default=REPO / "results" / "bench_paste")
    ap.add_argument("--videos", nargs="*", help="video stems in ../shared/data/videos (default: all)")
    ap.add_argument("--cores", type=int, default=2)
    ap.add_argument("--skip-run", action="store_true", help="only the tables and sheets of an earlier run")
    a = ap.parse_args()

    paths = shared_videos(a.videos)
    work, videos = a.work.resolve(), [p.stem for p in paths]
    t0 = time.time()
    if not a.skip_run:
        prepare(work, paths, a.frames, [], "demo")
    edits = list(bench_edits())
    if not a.skip_run:
        for i, mode in enumerate(MODES):
            configure(work, mode)
            run_mode(work, videos, edits, mode, a.cores, force_paste=i > 0)
    table = pd.DataFrame([r for v in videos for m in MODES for r in rows_of(work, v, m, edits)])
    per_video, st, bars = verdict(table)
    sheets = [contact_sheet(work, v, edits, work / f"{v}_sheet.png") for v in videos]
    text = "\n\n".join([
        f"## Paste modes: {len(videos)} videos x first {a.frames} frames, demo pack, stit "
        f"(wall clock {time.time() - t0:.0f} s)",
        markdown(table), "### Per video (means over the edits)", markdown(per_video),
        "### Probe strength per edit (mean over videos; ratio = detail / generator)", markdown(st),
        "### Bars\n\n" + "\n".join(f"- {k}: {'yes' if v else 'NO'}" for k, v in bars.items())])
    print(text)
    (work / "table.md").write_text(text + "\n")
    table.to_csv(work / "bench_paste.csv", index=False, float_format="%.6g")
    print(f"\nsaved {work / 'table.md'}, {work / 'bench_paste.csv'}; sheets: {', '.join(str(s) for s in sheets)}")


if __name__ == "__main__":
    main()
