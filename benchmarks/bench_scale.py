"""Memory, time and disk as a 1080p video gets longer (issue #12, item 6).

    python benchmarks/bench_scale.py [--frames 300 1200 4800] [--frames-1024 300 600] [--random-resolution 1024]
                                     [--epochs-1024 2] [--steps-1024 2] [--source talk_1] [--work results/bench_scale]
                                     [--cores 2] [--shard-frames N] [--skip-run]

Inputs, built at run time in ``<work>/inputs/`` (git-ignored): the first L frames of ``../shared/data/videos/
<source>.mp4`` (with their audio) enlarged to 1080 px high and centred in a 1920x1080 frame
(``bench_landmarks.to_1080p``), then looped (``bench_schedule.loop_clip``: frames and audio) to each size; L is the
largest whole divisor of every size that the source has frames for (talk_1, sizes 300..4800: 100), so every size
is a whole number of loops of the same content. Each size runs alone, one after another, in a work folder of its own
(``<work>/runs/<pack>_<frames>/``: one samples.tsv row) from a clean state, target ``all`` (videos, metrics,
figures, review), pack demo, then a random 1024 px pack (``stitch.packs.make_random_pack``, ``<work>/packs/``;
``--random-resolution`` changes its size, the option ``--frames-1024`` keeps its name); method stit, one edit
(older: age +8), 2 PTI epochs, 2 stitching steps (the random pack: ``--epochs-1024`` / ``--steps-1024``; one
generator step at 1024 px costs ~20 demo steps here), ``landmarks.detect_long_side: 640``, ``shard_frames`` the
workflow's (``--shard-frames`` sets it), ``OMP_WAIT_POLICY=PASSIVE``.

Measured per size: the wall time of the Snakemake run (input building excluded); per rule the peak RSS (max over
the rule's jobs of the job's own getrusage peak, the ``peak RSS`` line stitch.smk.setup ends each rule log with;
Snakemake's ``max_rss`` of the benchmark files ``results/<sample>/benchmarks/*.tsv`` and ``results/benchmarks/*.tsv``,
sampled about once a second, is kept beside it and stands in for a job without that line; MB = 2^20 bytes) and its
seconds summed over its jobs; the
bytes left under ``results/<sample>/`` right after the run, without the final outputs (``encode/``: the videos)
and the evaluation's and the run's records (``metrics/ figures/ review.html logs/ benchmarks/ settings.yaml``), per
frame and per edit; temp() files (paste segments) are deleted by Snakemake before then. Benchmark files are mapped to
rules by the ``rule <name>:`` / ``benchmark: <path>`` lines of Snakemake's own logs (``.snakemake/log/``): file
names alone are ambiguous (``paste_stit__recon_0000.tsv`` is rule paste_recon, not paste with edit ``_recon``);
a file missing from the logs falls back to the longest rule name of ``workflow/rules/*.smk`` prefixing its name.
Prints, per pack, rule x size peak RSS and seconds with growth factors (largest size / smallest), the runs, then
the issue's bars as PASS / FAIL lines. Writes ``<work>/table.md``, ``<work>/bench_scale.csv`` (per rule) and
``<work>/bench_scale_runs.csv``. A size whose ``runs/<pack>_<frames>/run.json`` exists (same source, loop period,
shard_frames and schedule) is not run again; a stopped one (``attempts.json``, no ``run.json``) is resumed, the
wall times of its attempts summed; ``--skip-run`` only rebuilds the tables of the sizes given from those.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import shutil
import sys
import time
from functools import reduce
from pathlib import Path

import pandas as pd
import yaml

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_landmarks import to_1080p  # noqa: E402
from bench_methods import REPO, SHARED, snakemake  # noqa: E402
from bench_schedule import loop_clip  # noqa: E402

from stitch.tables import logged_number, markdown  # noqa: E402
from stitch.video import cut_clip, extract_audio, iter_frames, probe, write_video  # noqa: E402

EDITS = {"older": {"age": 8}}
EXCLUDED = ("encode", "metrics", "figures", "review", "review.html", "logs", "benchmarks", "settings.yaml")
RSS_TOLERANCE, RSS_LIMIT_MB, DISK_LIMIT_MB = 0.10, 4096.0, 0.5
MB = 2.0**20


def loop_period(sizes: list[int], available: int) -> int:
    """The largest L <= ``available`` dividing every size (each input = a whole number of loops of L frames)."""
    g = reduce(math.gcd, sizes)
    return max(d for d in range(1, min(g, available) + 1) if g % d == 0)


def scale_clip(src: Path, dst: Path) -> None:
    """``src`` (frames and audio) with every frame enlarged into 1920x1080 (bench_landmarks.to_1080p)."""
    info = probe(src)
    wav = dst.with_name(f".{dst.stem}.wav")
    has_audio = extract_audio(src, wav)
    write_video(dst, (to_1080p(f) for f in iter_frames(src)), info.fps, audio_path=wav if has_audio else None,
                total=info.num_frames)
    wav.unlink(missing_ok=True)


def build_input(work: Path, source: str, period: int, frames: int) -> Path:
    """``<work>/inputs/<source>_1080p_<frames>_loop<period>.mp4``: the 1080p clip of ``period`` frames, looped."""
    inputs = work / "inputs"
    inputs.mkdir(parents=True, exist_ok=True)
    base = inputs / f"{source}_1080p_base{period}.mp4"
    if not base.is_file():
        cut = inputs / f".{source}_cut{period}.mp4"
        cut_clip(SHARED / "videos" / f"{source}.mp4", cut, 0, period)
        scale_clip(cut, base)
        cut.unlink()
    out = inputs / f"{source}_1080p_{frames}_loop{period}.mp4"
    if not out.is_file():
        loop_clip(base, out, frames // period)
    return out


def write_config(run: Path, sample: str, clip: Path, pack: str, shard_frames: int | None, epochs: int = 2,
                 steps: int = 2) -> None:
    (run / "config").mkdir(parents=True, exist_ok=True)
    (run / "config" / "samples.tsv").write_text(f"sample\tpath\n{sample}\t{clip.resolve()}\n")
    cfg = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    cfg.update(samples="config/samples.tsv", results="results", pack=pack, edits=EDITS, sweeps={}, methods=["stit"],
               shard_frames=shard_frames)
    cfg["pti"]["epochs"] = epochs
    cfg["stitching"]["max_steps"] = steps
    cfg["landmarks"]["detect_long_side"] = 640
    (run / "config" / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))


def intermediate_bytes(sample_dir: Path) -> dict[str, int]:
    """Bytes per top-level entry of ``results/<sample>/`` that is neither a final output nor a record."""
    out = {}
    for entry in sorted(sample_dir.iterdir()):
        if entry.name in EXCLUDED:
            continue
        files = [entry] if entry.is_file() else [f for f in entry.rglob("*") if f.is_file()]
        out[entry.name] = sum(f.stat().st_size for f in files)
    return out


def run_size(work: Path, a, pack_label: str, pack: str, frames: int, period: int) -> None:
    """One size from a clean work folder; its ``run.json`` (wall time, disk) marks it done: run again only when the
    source, the loop period, shard_frames or the schedule differ. A run stopped before its end (``attempts.json``
    with the same setup) is resumed: Snakemake reruns only the unfinished jobs, and the wall times of the attempts
    are summed (``attempts`` > 1 in ``run.json``; an attempt killed outright has no wall time:
    ``attempts_wall_unknown``)."""
    run = work / "runs" / f"{pack_label}_{frames}"
    epochs, steps = (a.epochs_1024, a.steps_1024) if pack_label != "demo" else (2, 2)
    setup = {"source": a.source, "period": period, "shard_frames": a.shard_frames, "pti_epochs": epochs,
             "stitching_steps": steps}
    if (run / "run.json").is_file() and json.loads((run / "run.json").read_text()).get("setup") == setup:
        print(f"{run.name}: measured already ({run / 'run.json'}; delete the folder to measure again)", flush=True)
        return
    clip = build_input(work, a.source, period, frames)
    sample = f"{a.source}_{frames}"
    attempts = run / "attempts.json"
    before = json.loads(attempts.read_text()) if attempts.is_file() else {}
    if before.get("setup") != setup:
        shutil.rmtree(run, ignore_errors=True)
        write_config(run, sample, clip, pack, a.shard_frames, epochs, steps)
        before = {"setup": setup, "walls": []}
    else:  # the stopped attempt may have left Snakemake's lock behind (kill -9, machine stop)
        print(f"{run.name}: resuming a stopped run ({len(before['walls'])} attempts before)", flush=True)
        snakemake(run, "all", "--unlock", cores=a.cores)
    attempts.write_text(json.dumps({**before, "walls": [*before["walls"], None]}) + "\n")  # None: killed before its end
    t0 = time.perf_counter()
    try:
        snakemake(run, "all", cores=a.cores)
    finally:
        attempts.write_text(json.dumps({**before, "walls": [*before["walls"], time.perf_counter() - t0]}) + "\n")
    walls = json.loads(attempts.read_text())["walls"]
    disk = intermediate_bytes(run / "results" / sample)
    info = {"pack": pack_label, "frames": frames, "sample": sample, "edits": len(EDITS), "setup": setup,
            "wall_s": sum(w for w in walls if w is not None), "attempts": len(walls),
            "attempts_wall_unknown": sum(w is None for w in walls), "intermediate_bytes": disk}
    (run / "run.json").write_text(json.dumps(info, indent=1) + "\n")


def rule_names() -> list[str]:
    """Rule names declared in workflow/rules/*.smk (the fallback of :func:`logged_rules`)."""
    text = "\n".join(p.read_text() for p in (REPO / "workflow" / "rules").glob("*.smk"))
    return re.findall(r"^(?:rule|checkpoint)\s+(\w+)\s*:", text, re.M)


def logged_rules(run: Path) -> dict[str, tuple[str, str | None]]:
    """{benchmark path relative to ``run``: (rule, the job's log path or None)} from the job blocks of Snakemake's
    logs in ``run/.snakemake/log``."""
    out, rule, job_log = {}, None, None
    for log in sorted((run / ".snakemake" / "log").glob("*.snakemake.log")):
        for line in log.read_text(errors="replace").splitlines():
            head = re.match(r"^(?:local)?(?:rule|checkpoint) (\w+):$", line)
            if head:
                rule, job_log = head.group(1), None
            elif rule and line.startswith("    log: "):
                job_log = os.path.normpath(line.split(": ", 1)[1].split(" (check")[0].strip())
            elif rule and line.startswith("    benchmark: "):
                out[os.path.normpath(line.split(": ", 1)[1].strip())] = (rule, job_log)
            elif not line.startswith("    "):
                rule = None
    return out


def rule_of(path: str, logged: dict[str, tuple[str, str | None]], names: list[str]) -> str:
    if os.path.normpath(path) in logged:
        return logged[os.path.normpath(path)][0]
    stem = Path(path).stem
    prefixes = [n for n in names if stem == n or stem.startswith(n + "_")]
    return max(prefixes, key=len) if prefixes else stem


def logged_peak_rss(run: Path, job_log: str | None) -> float:
    """The job's exact peak RSS (MB) from the last ``peak RSS <MB> MB`` line of its log (stitch.smk.setup), NaN
    when the log has none."""
    return logged_number(run / job_log, r"peak RSS ([\d.]+) MB") if job_log else float("nan")


def rules_table(run: Path, names: list[str]) -> pd.DataFrame:
    """Per rule of one run: jobs, peak RSS (MB, max over jobs: the jobs' getrusage peaks from their logs; Snakemake's
    sampled ``max_rss`` where a log has none), Snakemake's sampled peak, seconds (summed over jobs)."""
    logged = logged_rules(run)
    rows = []
    for f in sorted((run / "results").glob("*/benchmarks/*.tsv")) + sorted((run / "results").glob("benchmarks/*.tsv")):
        b, key = pd.read_csv(f, sep="\t"), os.path.normpath(str(f.relative_to(run)))
        sampled, exact = float(b["max_rss"].max()), logged_peak_rss(run, logged.get(key, (None, None))[1])
        rows.append({"rule": rule_of(key, logged, names), "rss": sampled if math.isnan(exact) else exact,
                     "sampled": sampled, "s": float(b["s"].mean())})
    df = pd.DataFrame(rows, columns=["rule", "rss", "sampled", "s"])
    return df.groupby("rule").agg(jobs=("rss", "size"), peak_rss_mb=("rss", "max"), sampled_rss_mb=("sampled", "max"),
                                  seconds=("s", "sum")).reset_index()


def collect(work: Path, wanted: list[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(per pack x frames x rule, per run) of the measured runs ``<work>/runs/<wanted>``."""
    names, per_rule, runs = rule_names(), [], []
    for rj in [work / "runs" / w / "run.json" for w in wanted if (work / "runs" / w / "run.json").is_file()]:
        info = json.loads(rj.read_text())
        rules = rules_table(rj.parent, names).assign(pack=info["pack"], frames=info["frames"])
        per_rule.append(rules)
        kept = {k: v for k, v in info["intermediate_bytes"].items() if k not in EXCLUDED}
        disk = sum(kept.values())
        runs.append({"pack": info["pack"], "frames": info["frames"], "jobs": int(rules["jobs"].sum()),
                     "attempts": info.get("attempts", 1), "wall_unknown": info.get("attempts_wall_unknown", 0),
                     "wall_s": info["wall_s"],
                     "wall_s_per_frame": info["wall_s"] / info["frames"],
                     "rule_seconds": rules["seconds"].sum(), "max_rule_rss_mb": rules["peak_rss_mb"].max(),
                     "intermediate_mb": disk / MB,
                     "mb_per_frame_per_edit": disk / MB / info["frames"] / info["edits"],
                     "largest_dirs": ", ".join(f"{k} {v / MB:.3g}" for k, v in sorted(
                         kept.items(), key=lambda kv: -kv[1])[:3])})
    if not runs:
        sys.exit(f"no measured runs under {work / 'runs'}")
    cols = ["pack", "frames", "rule", "jobs", "peak_rss_mb", "sampled_rss_mb", "seconds"]
    per_rule = pd.concat(per_rule)[cols].sort_values(["pack", "frames", "rule"], ignore_index=True)
    return per_rule, pd.DataFrame(runs).sort_values(["pack", "frames"], ignore_index=True)


def growth_table(per_rule: pd.DataFrame, pack: str) -> pd.DataFrame:
    """Rule x size of one pack: jobs, peak RSS (MB) and seconds, RSS and seconds with their growth factor (largest
    size / smallest; empty with one size)."""
    d = per_rule[per_rule["pack"] == pack]
    sizes = sorted(d["frames"].unique())
    wide = {k: d.pivot(index="rule", columns="frames", values=k).reindex(columns=sizes)
            for k in ("jobs", "peak_rss_mb", "seconds")}
    out = pd.DataFrame(index=wide["jobs"].index)
    out["jobs"] = wide["jobs"].apply(lambda r: "/".join("-" if pd.isna(v) else str(int(v)) for v in r), axis=1)
    for key, name, growth in (("peak_rss_mb", "rss_mb", "rss_growth"), ("seconds", "s", "s_growth")):
        for n in sizes:
            out[f"{name}_{n}"] = wide[key][n]
        out[growth] = wide[key][sizes[-1]] / wide[key][sizes[0]] if len(sizes) > 1 else float("nan")
    return out.reset_index()


def rss_bar(table: pd.DataFrame, pack: str) -> str:
    cols = [c for c in table if c.startswith("rss_mb_")]
    if len(cols) < 2:
        return f"n/a   {pack}: one size only, no RSS growth to check"
    off = table[~((table["rss_growth"] - 1).abs() <= RSS_TOLERANCE)]
    what = f"{pack}: every rule's peak RSS at {cols[-1][7:]} frames within {RSS_TOLERANCE:.0%} of {cols[0][7:]}"
    worst = ", ".join(f"{r.rule} x{r.rss_growth:.3g}" for r in off.itertuples())
    return f"{'PASS' if off.empty else 'FAIL'}  {what}" + (f" (off: {worst})" if worst else "")


def bars(tables: dict[str, pd.DataFrame], per_rule: pd.DataFrame, runs: pd.DataFrame) -> list[str]:
    lines = [rss_bar(t, pack) for pack, t in tables.items()]
    top = per_rule.loc[per_rule["peak_rss_mb"].idxmax()]
    lines.append(f"{'PASS' if top['peak_rss_mb'] <= RSS_LIMIT_MB else 'FAIL'}  no rule above {RSS_LIMIT_MB:.0f} MB "
                 f"(max {top['peak_rss_mb']:.0f} MB: {top['rule']}, {top['pack']} {top['frames']} frames)")
    demo = runs[runs["pack"] == "demo"]
    if len(demo):
        worst = demo["mb_per_frame_per_edit"].max()
        lines.append(f"{'PASS' if worst <= DISK_LIMIT_MB else 'FAIL'}  demo pack 1080p intermediates <= "
                     f"{DISK_LIMIT_MB} MB per frame per edit (max {worst:.3g})")
    return lines


def report(work: Path, wanted: list[str]) -> str:
    per_rule, runs = collect(work, wanted)
    per_rule.to_csv(work / "bench_scale.csv", index=False, float_format="%.6g")
    runs.to_csv(work / "bench_scale_runs.csv", index=False, float_format="%.6g")
    tables = {pack: growth_table(per_rule, pack) for pack in runs["pack"].unique()}
    text = ""
    for pack, t in tables.items():
        text += f"## Pack {pack}: peak RSS (MB) and seconds per rule, by frames (growth = largest / smallest)\n\n"
        text += markdown(t, floatfmt=".4g") + "\n\n"
    text += "## Runs (wall = the whole Snakemake run; intermediates = results/<sample>/ without final outputs)\n\n"
    text += markdown(runs, floatfmt=".4g") + "\n\n## Bars\n\n" + "\n".join(bars(tables, per_rule, runs)) + "\n"
    return text


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, nargs="*", default=[300, 1200, 4800], help="sizes with the demo pack")
    ap.add_argument("--frames-1024", type=int, nargs="*", default=[300, 600], help="sizes with a random 1024 px pack")
    ap.add_argument("--random-resolution", type=int, default=1024, help="resolution of the random pack (default 1024)")
    ap.add_argument("--source", default="talk_1", help="video stem in ../shared/data/videos")
    ap.add_argument("--work", type=Path, default=REPO / "results" / "bench_scale")
    ap.add_argument("--cores", type=int, default=2)
    ap.add_argument("--epochs-1024", type=int, default=2, help="PTI epochs with the random pack (default 2)")
    ap.add_argument("--steps-1024", type=int, default=2, help="stitching steps with the random pack (default 2)")
    ap.add_argument("--shard-frames", type=int, help="frames per shard (default: the workflow's)")
    ap.add_argument("--skip-run", action="store_true", help="only rebuild the tables from the runs on disk")
    a = ap.parse_args()
    work, label = a.work.resolve(), f"random{a.random_resolution}"
    if not a.skip_run:
        os.environ["OMP_WAIT_POLICY"] = "PASSIVE"  # bench_methods.snakemake passes os.environ on
        period = loop_period(a.frames + a.frames_1024, probe(SHARED / "videos" / f"{a.source}.mp4").num_frames)
        for n in a.frames:
            run_size(work, a, "demo", "demo", n, period)
        if a.frames_1024:  # made after the demo runs: those are measured even if this pack cannot be made
            from stitch.packs import make_random_pack

            pack = work / "packs" / f"random_{a.random_resolution}"
            if not (pack / "pack.yaml").is_file():
                make_random_pack(pack, resolution=a.random_resolution)
            for n in a.frames_1024:
                run_size(work, a, label, str(pack), n, period)
    text = report(work, [f"demo_{n}" for n in a.frames] + [f"{label}_{n}" for n in a.frames_1024])
    (work / "table.md").write_text(text)
    print(text)
    print(f"saved {work / 'table.md'}, {work / 'bench_scale.csv'}, {work / 'bench_scale_runs.csv'}")


if __name__ == "__main__":
    main()
