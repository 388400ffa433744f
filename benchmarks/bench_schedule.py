"""Schedules compared in one run: ``reference`` (STIT's, with the pack's defaults) vs ``fast`` (issue #13).

    python benchmarks/bench_schedule.py [--frames N] [--videos talk_1 ...] [--work results/bench_schedule]
                                        [--loop 4] [--cores 2] [--seeds 0 1 2] [--skip-run]

Every video of ``../shared/data/videos`` (full length unless ``--frames``), pack demo, edits older (age +8), smile
(+3) and gender (towards the other sex: +-6; both are run, the table keeps the one that changes the sex), method
stit (``--methods stit no_stitch`` adds no_stitch's seam error). Each video is one samples.tsv row per schedule
(column ``schedule``), so both schedules run in the same Snakemake run on the same machine state. ``--loop K`` then
runs, in ``<work>/loop``, the PTI of talk_1 and of talk_1 looped K times (frames and audio) under ``fast``, one job
at a time, to show PTI's time growing sublinearly. Prints per video x schedule x edit: generator steps and forwards
per frame per edit, seconds per frame of PTI / stitching / the pipeline, recon PSNR/SSIM over all frames, TL-ID,
TG-ID, identity distance, seam error (stitch.seam), probe deltas; then the bars of the issue as ratios fast /
reference, and the seconds of PTI + stitching summed over all videos and edits. Writes ``<work>/table.md`` and
``<work>/bench_schedule.csv``.

``--seeds 0 1 2`` runs every video x schedule once per PTI seed (samples.tsv column ``pti_seed``; samples
``<video>__<schedule>__s<seed>``): the bars then compare the means over the seeds, and a second table gives each
quality metric's mean and standard deviation per schedule and Welch's t of the difference (|t| above ~2.8 with 3
seeds each: a difference the seeds' own spread does not explain, p < 0.05). One seed per schedule cannot separate
a schedule's effect from a seed's: STIT's schedule run with seed 1 against seed 0 moves TL-ID, the seam and the
probe deltas beyond the issue's bars by itself (README).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_methods import REPO, SHARED, snakemake  # noqa: E402

from stitch.tables import job_cpu_seconds, markdown, read_benchmark  # noqa: E402
from stitch.video import cut_clip, extract_audio, iter_frames, probe, read_wav, write_video, write_wav  # noqa: E402

EDITS = {"older": {"age": 8}, "smile": {"smile": 3}, "to_male": {"gender": 6}, "to_female": {"gender": -6}}
SCHEDULES = ("reference", "fast")
COLUMNS = ["video", "schedule", "edit", "frames", "steps_per_frame", "forwards_per_frame", "spf_pti", "spf_render",
           "spf_pipeline", "recon_psnr", "recon_ssim", "tl_id", "tg_id", "id_dist", "seam_mse", "seam_grad",
           "age_delta", "p_male_delta", "smile_delta"]


def loop_clip(src: Path, dst: Path, times: int) -> None:
    """``src`` played ``times`` times in a row (frames and audio), at the same fps."""
    info = probe(src)
    frames = list(iter_frames(src))
    wav = None
    if info.has_audio:
        wav = dst.with_suffix(".wav")
        extract_audio(src, wav)
        samples, rate = read_wav(wav)
        per_loop = int(round(len(frames) / info.fps * rate))
        write_wav(wav, np.tile(samples[:per_loop], (times, 1)), rate)
    write_video(dst, (f for _ in range(times) for f in frames), info.fps, audio_path=wav, total=times * len(frames))
    if wav is not None:
        wav.unlink()


def write_config(work: Path, rows: list[tuple[str, ...]], methods: list[str]) -> None:
    """samples.tsv (sample, path, schedule[, pti_seed]) and config.yaml of a work folder."""
    (work / "config").mkdir(parents=True, exist_ok=True)
    header = ["sample", "path", "schedule", "pti_seed"][: max(len(r) for r in rows)]
    (work / "config" / "samples.tsv").write_text(
        "\t".join(header) + "\n" + "".join("\t".join(r) + "\n" for r in rows))
    cfg = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    cfg.update(samples="config/samples.tsv", results="results", pack="demo", edits=EDITS, sweeps={}, methods=methods)
    (work / "config" / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))


def prepare(work: Path, videos: list[str], frames: int | None, methods: list[str],
            seeds: list[int] | None = None) -> list[str]:
    """Inputs, samples.tsv (one row per video x schedule, or per video x schedule x PTI seed) and config; returns
    the sample names."""
    (work / "inputs").mkdir(parents=True, exist_ok=True)
    rows = []
    for v in videos:
        src = SHARED / "videos" / f"{v}.mp4"
        clip = work / "inputs" / f"{v}.mp4"
        n = min(frames or probe(src).num_frames, probe(src).num_frames)
        if not clip.is_file() or probe(clip).num_frames != n:
            cut_clip(src, clip, 0, n)
        if seeds:
            rows += [(f"{v}__{s}__s{k}", f"inputs/{clip.name}", s, str(k)) for s in SCHEDULES for k in seeds]
        else:
            rows += [(f"{v}__{s}", f"inputs/{clip.name}", s) for s in SCHEDULES]
    write_config(work, rows, methods)
    return [r[0] for r in rows]


def prepare_loop(work: Path, clip: Path, loop: int) -> list[str]:
    """A folder of its own with ``clip`` and ``clip`` looped ``loop`` times, both under fast (only PTI is run)."""
    (work / "inputs").mkdir(parents=True, exist_ok=True)
    looped = work / "inputs" / f"{clip.stem}_x{loop}.mp4"
    if not looped.is_file():
        loop_clip(clip, looped, loop)
    rows = [(f"{clip.stem}__fast", str(clip.resolve()), "fast"), (f"{looped.stem}__fast", f"inputs/{looped.name}", "fast")]
    write_config(work, rows, ["stit"])
    return [r[0] for r in rows]


def table(work: Path) -> pd.DataFrame:
    """The tables rule's metrics.csv, one row per video x schedule (x seed) x edit of method stit (+ no_stitch's
    seam)."""
    m = pd.read_csv(work / "results" / "tables" / "metrics.csv")
    m["sample"] = m["video"]
    parts = m["sample"].str.split("__", expand=True)
    m["video"], m["schedule"] = parts[0], parts[1]
    m["seed"] = parts[2].str.lstrip("s").astype(int) if parts.shape[1] > 2 else 0
    keys = ["video", "schedule", "seed", "edit"]
    seam = m[m["method"] == "no_stitch"].set_index(keys)["seam_mse"]
    m = m[m["method"] == "stit"].copy()
    if len(seam):
        m["no_stitch_seam_mse"] = [seam.get(k, np.nan) for k in zip(*(m[c] for c in keys))]
    gender = m[m["edit"].isin(["to_male", "to_female"]) & (m["schedule"] == "reference")]
    # per video, the gender edit that moves P(male) most under reference (towards the other sex), for both schedules
    other = {v: g.groupby("edit")["p_male_delta"].mean().abs().idxmax() for v, g in gender.groupby("video")}
    out = m[~m["edit"].isin(["to_male", "to_female"]) | (m["edit"] == m["video"].map(other))].copy()
    for c in ("recon_psnr", "recon_ssim"):
        recon = out[out["edit"] == "_recon"].set_index("sample")[c]
        out[c] = out["sample"].map(recon)
    # CPU seconds of the whole PTI job and of the edit's stitching jobs (their logs' getrusage lines): the wall ratio
    # of short jobs moves with what runs beside them, the CPU ratio does not
    logs = [work / "results" / v / "logs" for v in out["sample"]]
    cpu_pti = {d: job_cpu_seconds(d, "pti") for d in set(logs)}  # one PTI job per sample
    out["cpu_pti"] = [cpu_pti[d] for d in logs]
    out["cpu_stitching"] = [job_cpu_seconds(d, f"stitching_{e}") for d, e in zip(logs, out["edit"])]
    columns = COLUMNS[:2] + ["seed"] + COLUMNS[2:] + ["cpu_pti", "cpu_stitching", "no_stitch_seam_mse"]
    return out[[c for c in columns if c in out]]


PROBE = {"older": "age_delta", "smile": "smile_delta"}  # the gender edits: p_male_delta


def bars(t: pd.DataFrame) -> pd.DataFrame:
    """fast vs reference per video and edit: the issue's bars (on the means over the seeds when there are several)."""
    edits = t[t["edit"] != "_recon"].groupby(["video", "edit", "schedule"]).mean(numeric_only=True)
    rows = []
    for (video, edit), g in edits.groupby(level=[0, 1]):
        if (video, edit, "reference") not in g.index or (video, edit, "fast") not in g.index:
            continue
        ref, fast = g.loc[(video, edit, "reference")], g.loc[(video, edit, "fast")]
        delta = PROBE.get(edit, "p_male_delta")
        rows.append({
            "video": video, "edit": edit, "fast_steps_per_frame": fast["steps_per_frame"],
            "ref_steps_per_frame": ref["steps_per_frame"],
            "time_ratio": (ref["spf_pti"] + ref["spf_render"]) / (fast["spf_pti"] + fast["spf_render"]),
            "cpu_ratio": (ref["cpu_pti"] + ref["cpu_stitching"]) / (fast["cpu_pti"] + fast["cpu_stitching"]),
            "pipeline_ratio": ref["spf_pipeline"] / fast["spf_pipeline"],
            "d_recon_psnr": fast["recon_psnr"] - ref["recon_psnr"], "d_tl_id": fast["tl_id"] - ref["tl_id"],
            "d_tg_id": fast["tg_id"] - ref["tg_id"], "seam_ratio": fast["seam_mse"] / ref["seam_mse"],
            "probe_ratio": fast[delta] / ref[delta]})
    return pd.DataFrame(rows)


def seed_spread(t: pd.DataFrame) -> pd.DataFrame:
    """Per video x edit x quality metric: each schedule's mean and standard deviation over the PTI seeds, the
    difference of the means (fast - reference) and Welch's t of it (NaN where a schedule has one seed)."""
    rows = []
    for (video, edit), g in t[t["edit"] != "_recon"].groupby(["video", "edit"]):
        for metric in ("recon_psnr", "tl_id", "tg_id", "seam_mse", PROBE.get(edit, "p_male_delta")):
            ref, fast = (g.loc[g["schedule"] == s, metric].astype(float) for s in SCHEDULES)
            se = np.sqrt(ref.var(ddof=1) / len(ref) + fast.var(ddof=1) / len(fast))
            rows.append({"video": video, "edit": edit, "metric": metric, "seeds": f"{len(ref)}/{len(fast)}",
                         "ref_mean": ref.mean(), "ref_sd": ref.std(ddof=1), "fast_mean": fast.mean(),
                         "fast_sd": fast.std(ddof=1), "diff": fast.mean() - ref.mean(),
                         "welch_t": (fast.mean() - ref.mean()) / se if se > 0 else np.nan})
    return pd.DataFrame(rows)


def totals(t: pd.DataFrame) -> str:
    """Seconds of PTI (once per video) + stitching (per edit) summed over the videos, per schedule, and the ratio
    (with several PTI seeds: each video's mean over its seeds, so a schedule run with fewer seeds is not cheaper)."""
    edits = t[t["edit"] != "_recon"]
    sec, cpu = {}, {}
    for schedule, g in edits.groupby("schedule"):
        runs = g.groupby(["video", "seed"]).agg(frames=("frames", "first"), pti=("spf_pti", "first"),
                                                render=("spf_render", "sum"), cpu_pti=("cpu_pti", "first"),
                                                cpu_stitching=("cpu_stitching", "sum"))
        per_video = pd.DataFrame({"sec": runs["frames"] * (runs["pti"] + runs["render"]),
                                  "cpu": runs["cpu_pti"] + runs["cpu_stitching"]}).groupby(level="video").mean()
        sec[schedule] = float(per_video["sec"].sum())
        # NaN unless every job logged its CPU time (runs before stitch.smk logged it)
        cpu[schedule] = float(per_video["cpu"].sum()) if runs[["cpu_pti", "cpu_stitching"]].notna().all().all() \
            else np.nan
    if len(sec) < 2:
        return ""
    return (f"PTI + stitching, all videos and edits: reference {sec['reference']:.0f} s, fast {sec['fast']:.0f} s "
            f"(ratio {sec['reference'] / sec['fast']:.2f}); CPU time {cpu['reference']:.0f} s and {cpu['fast']:.0f} s "
            f"(ratio {cpu['reference'] / cpu['fast']:.2f})\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, help="first N frames of every video (default: full length)")
    ap.add_argument("--videos", nargs="*", help="video stems in ../shared/data/videos (default: all)")
    ap.add_argument("--work", type=Path, default=REPO / "results" / "bench_schedule")
    ap.add_argument("--loop", type=int, default=4, help="talk_1 looped this many times under fast (0: skip)")
    ap.add_argument("--cores", type=int, default=2)
    ap.add_argument("--methods", nargs="+", default=["stit"], choices=["stit", "no_stitch"],
                    help="no_stitch adds the seam comparison stit vs no_stitch (default: stit only)")
    ap.add_argument("--seeds", type=int, nargs="+", help="PTI seeds: each video x schedule once per seed (means, SDs)")
    ap.add_argument("--skip-run", action="store_true", help="only print the tables of an earlier run")
    a = ap.parse_args()
    videos = a.videos or sorted(p.stem for p in (SHARED / "videos").glob("*.mp4"))
    prepare(a.work, videos, a.frames, a.methods, a.seeds)
    loop = a.loop if "talk_1" in videos and a.loop > 1 else 0
    if not a.skip_run:
        snakemake(a.work, "tables", cores=a.cores)
    if loop and not a.skip_run:
        samples = prepare_loop(a.work / "loop", a.work / "inputs" / "talk_1.mp4", loop)
        targets = [f"results/{s}/pti/stats.json" for s in samples]
        # one job at a time, so the two PTI jobs run on an otherwise idle machine: the sublinear bar compares two
        # wall times, which a job beside them would skew (``--omit-from pti`` cannot hold PTI back here: its jobs
        # are planned only after the frames checkpoint, so a first run with it went on to run them side by side)
        snakemake(a.work / "loop", *targets, cores=1)
    t = table(a.work)
    t.to_csv(a.work / "bench_schedule.csv", index=False)
    b = bars(t)
    text = "## Per video x schedule x edit (method stit)\n\n" + markdown(t) + "\n\n## fast vs reference\n\n" + markdown(b) + "\n\n" + totals(t)
    if t["seed"].nunique() > 1:
        text += "\n## Over the PTI seeds: mean, SD, fast - reference, Welch's t\n\n" + markdown(seed_spread(t)) + "\n"
    if loop:
        res = a.work / "loop" / "results"
        runs = [res / s for s in ("talk_1__fast", f"talk_1_x{loop}__fast")]
        one, many = (read_benchmark(r / "benchmarks" / "pti.tsv") for r in runs)
        cpu1, cpu4 = (job_cpu_seconds(r / "logs", "pti") for r in runs)
        text += (f"\n\nPTI under fast: talk_1 {one:.1f} s, talk_1 x{loop} {many:.1f} s (ratio {many / one:.2f}; CPU "
                 f"{cpu1:.1f} s and {cpu4:.1f} s, ratio {cpu4 / cpu1:.2f})\n")
    (a.work / "table.md").write_text(text + "\n")
    print(text)

if __name__ == "__main__":
    main()
