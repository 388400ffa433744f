"""Edit targets in probe units (issue #18): the demo pack's fixed factors vs factors calibrated per video.

    python benchmarks/bench_calibrate.py [--frames N] [--method stit] [--videos talk_1 ...] [--work DIR]
                                         [--cores 2] [--pti-epochs N] [--stitching-steps N] [--skip-run]

Every video of ``../shared/data/videos`` (``--frames N``: its first N frames, cut into ``<work>/inputs/``; default
the full length, the video itself) runs through the workflow with the demo pack and ``--method`` (default stit)
for these edits, fixed and calibrated side by side:

=========  ===============  =====================  ==========================================================
test       fixed factor     calibrated target      on
=========  ===============  =====================  ==========================================================
older      ``age: 8``       ``age_years: 15``      every video
younger    ``age: -8``      ``age_years: -10``     videos whose source probe age is above 25
gender     ``gender: ±6``   ``gender: male``       every video; female sources to male, male ones to female
                            / ``female``           (``gender: -6`` / ``female``)
=========  ===============  =====================  ==========================================================

The source's age and gender come from rule ``metrics_source`` (run first). Printed and saved as
``<work>/bench_calibrate.csv``: per video and test the fixed and the calibrated edit's probe age change (years),
the share of frames whose predicted gender is flipped, identity distance, TL-ID / TG-ID, the factor used, whether
the calibration reached its target on its keyframes, and calibration seconds against the edit's total time (every
stage that made the edited video, calibration included, metrics excluded). Issue #18 is done when the calibrated
age change is within ±5 years of +15 (and of −10 where run) on every video, the gender flips on ≥ 80 % of frames of
every video and calibration costs ≤ 10 % of the edit's total time.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_methods import REPO, cut_input, shared_videos  # noqa: E402

from stitch.tables import markdown, read_benchmark, stage_benchmarks  # noqa: E402
#: test -> (fixed edit, calibrated edit); the gender test picks to_male / to_female per video
EDITS = {"older_fixed": {"age": 8}, "older": {"age_years": 15},
         "younger_fixed": {"age": -8}, "younger": {"age_years": -10},
         "to_male_fixed": {"gender": 6}, "to_male": {"gender": "male"},
         "to_female_fixed": {"gender": -6}, "to_female": {"gender": "female"}}
GPU_RULES = ("invert", "pti", "recon", "stitching", "baseline", "calibrate")
YOUNGER_MIN_AGE = 25.0


def prepare(work: Path, videos: list[Path], frames: int | None, method: str, pti_epochs, stitching_steps,
            schedule: str | None = None) -> None:
    """Inputs (cuts when ``frames``), samples.tsv and config.yaml of the work dir."""
    (work / "config").mkdir(parents=True, exist_ok=True)
    rows = [f"{v.stem}\t{cut_input(work, v, frames)}" for v in videos]
    (work / "config" / "samples.tsv").write_text("sample\tpath\n" + "\n".join(rows) + "\n")
    cfg = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    cfg.update(samples="config/samples.tsv", results="results", pack="demo", edits=EDITS, sweeps={}, methods=[method])
    cfg["pti"]["epochs"] = pti_epochs
    cfg["stitching"]["max_steps"] = stitching_steps
    cfg["schedule"] = schedule
    (work / "config" / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))


def snakemake(work: Path, *targets: str, cores: int = 2) -> None:
    exe = Path(sys.executable).with_name("snakemake")
    cmd = [str(exe), *targets, "-s", str(REPO / "Snakefile"), "-d", str(work), "--cores", str(cores),
           "--resources", f"gpu={cores}", "--set-threads", *(f"{r}=1" for r in GPU_RULES), "--rerun-incomplete"]
    print("+", " ".join(cmd[:4]), f"... ({len(targets)} targets)", flush=True)
    subprocess.run(cmd, check=True, env={**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")})


def plan(work: Path, videos: list[str]) -> dict[str, dict[str, tuple[str, str]]]:
    """{video: {test: (fixed edit, calibrated edit)}} from the source's probe readings."""
    out = {}
    for v in videos:
        src = np.load(work / "results" / v / "metrics" / "source.npz")
        age, p_male = np.nanmean(src["age"]), np.nanmean(src["p_male"])
        to = "to_female" if p_male >= 0.5 else "to_male"
        tests = {"older": ("older_fixed", "older"), "gender": (f"{to}_fixed", to)}
        if age > YOUNGER_MIN_AGE:
            tests["younger"] = ("younger_fixed", "younger")
        out[v] = tests
        print(f"{v}: source probe age {age:.1f} y, P(male) {p_male:.2f} -> tests {', '.join(tests)}")
    return out


def edit_seconds(bench: Path, method: str, edit: str) -> float:
    """Wall-clock seconds of every stage that made the edited video (calibration included, metrics excluded)."""
    stems = [s for stage, ss in stage_benchmarks(method, edit).items() if stage != "metrics" for s in ss]
    return float(np.nansum([read_benchmark(bench / f"{s}.tsv") for s in [*stems, f"calibrate_{edit}"]]))


def row(work: Path, video: str, method: str, edit: str) -> dict:
    """One edit's measures on one video."""
    res = work / "results" / video
    summary = json.loads((res / "metrics" / method / f"{edit}.json").read_text())
    frames = pd.read_csv(res / "metrics" / method / f"{edit}.csv")
    both = frames[frames["found_src"] & frames["found_edit"]]
    flipped = float(((both["p_male_src"] >= 0.5) != (both["p_male_edit"] >= 0.5)).mean()) if len(both) else np.nan
    applied = json.loads((res / "edit" / f"{edit}.json").read_text())["factors"]
    calib = res / "calibrate" / f"{edit}.json"
    doc = json.loads(calib.read_text()) if calib.is_file() else None
    seconds = edit_seconds(res / "benchmarks", method, edit)
    calib_s = read_benchmark(res / "benchmarks" / f"calibrate_{edit}.tsv") if doc else np.nan
    return {"age_delta": summary["age_delta"], "gender_flip": flipped, "id_dist": summary["id_dist"],
            "tl_id": summary["tl_id"], "tg_id": summary["tg_id"],
            "factor": ", ".join(f"{d} {f:.3g}" for d, f in applied.items()),
            "target_met": None if doc is None else bool(doc["reached"]),
            "calib_s": calib_s, "edit_s": seconds, "calib_share": calib_s / seconds if doc else np.nan}


def table(work: Path, tests: dict, method: str) -> pd.DataFrame:
    rows = []
    for video, per in tests.items():
        for test, (fixed, calibrated) in per.items():
            f, c = row(work, video, method, fixed), row(work, video, method, calibrated)
            rows.append({"video": video, "test": test, "target": json.dumps(EDITS[calibrated])[1:-1],
                         **{f"fixed_{k}": v for k, v in f.items() if k not in ("target_met", "calib_s", "calib_share")},
                         **{f"cal_{k}": v for k, v in c.items()}})
    return pd.DataFrame(rows)


def verdict(df: pd.DataFrame) -> list[str]:
    out = []
    for test, goal in (("older", 15.0), ("younger", -10.0)):
        sub = df[df["test"] == test]
        if len(sub):
            ok = (sub["cal_age_delta"] - goal).abs() <= 5
            out.append(f"{test}: calibrated age change within ±5 y of {goal:+g} on {int(ok.sum())}/{len(sub)} videos "
                       f"(fixed: {int(((sub['fixed_age_delta'] - goal).abs() <= 5).sum())}/{len(sub)})")
    sub = df[df["test"] == "gender"]
    if len(sub):
        out.append(f"gender: flipped on >= 80 % of frames on {int((sub['cal_gender_flip'] >= 0.8).sum())}/{len(sub)} "
                   f"videos (fixed: {int((sub['fixed_gender_flip'] >= 0.8).sum())}/{len(sub)})")
    out.append(f"calibration share of the edit's total time: max {df['cal_calib_share'].max():.1%}, "
               f"mean {df['cal_calib_share'].mean():.1%} (goal <= 10 %)")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, help="first N frames of every video (default: the full length)")
    ap.add_argument("--method", default="stit", choices=["stit", "no_stitch", "e4e", "pti_frame"])
    ap.add_argument("--videos", nargs="*", help="video stems in ../shared/data/videos (default: all)")
    ap.add_argument("--work", type=Path, default=REPO / "results" / "bench_calibrate")
    ap.add_argument("--cores", type=int, default=2)
    ap.add_argument("--pti-epochs", type=int, help="PTI epochs (default: the pack's, demo 40)")
    ap.add_argument("--stitching-steps", type=int, help="stitching max steps per frame (default: the pack's)")
    ap.add_argument("--schedule", choices=["reference", "fast"], help="PTI/stitching schedule (default: the pack's)")
    ap.add_argument("--skip-run", action="store_true", help="only print the table of an earlier run")
    a = ap.parse_args()

    videos = shared_videos(a.videos)
    work, names, t0 = a.work.resolve(), [v.stem for v in videos], time.time()
    if not a.skip_run:
        prepare(work, videos, a.frames, a.method, a.pti_epochs, a.stitching_steps, a.schedule)
        snakemake(work, *[f"results/{v}/metrics/source.npz" for v in names], cores=a.cores)
    tests = plan(work, names)
    if not a.skip_run:
        snakemake(work, *[f"results/{v}/metrics/{a.method}/{e}.json" for v, per in tests.items()
                          for pair in per.values() for e in pair], cores=a.cores)
    df = table(work, tests, a.method)
    df.to_csv(work / "bench_calibrate.csv", index=False, float_format="%.6g")
    length = f"first {a.frames} frames" if a.frames else "full length"
    print(f"\n## Fixed factors vs calibrated targets: {len(videos)} videos ({length}), demo pack, method {a.method}, "
          f"schedule {a.schedule or 'the pack default'} "
          f"(wall clock {time.time() - t0:.0f} s)\n")
    print(markdown(df, floatfmt=".3g"))
    print("\n" + "\n".join(f"- {line}" for line in verdict(df)))
    print(f"\nsaved {work / 'bench_calibrate.csv'}")


if __name__ == "__main__":
    main()
