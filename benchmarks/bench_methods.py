"""Compare the four methods (e4e, pti_frame, no_stitch, stit) on the real videos with the embedded demo pack.

    python benchmarks/bench_methods.py [--frames 48] [--work results/bench_methods] [--videos talk_1 act_d3 ...]
                                       [--edits older smile] [--cores 2] [--pti-epochs N] [--stitching-steps N]
                                       [--skip-run]

Cuts the first ``--frames`` frames of every video in ``../shared/data/videos`` (with their audio) into
``<work>/inputs/`` (git-ignored; the real videos are never copied into the repo), writes a Snakemake work dir
(config with all four methods, ``pack: demo``) and runs the workflow's ``paper`` target: every method and edit,
the metrics, the figures (``<work>/results/<video>/figures/paper/``), the tables
(``<work>/results/tables/paper/``) and the HTML report (``<work>/report.html``). Then prints the table — TL-ID,
TG-ID, identity distance, reconstruction PSNR / SSIM, attribute-probe deltas, seconds per frame per stage — as
markdown and saves it as ``<work>/bench_methods.csv`` (+ the per-method means as ``bench_methods_summary.csv``).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from stitch.tables import markdown  # noqa: E402
from stitch.video import cut_clip, probe  # noqa: E402

SHARED = Path(os.environ.get("STITCH_SHARED_DATA", REPO.parent / "shared" / "data"))
EDITS = {"older": {"age": 8}, "younger": {"age": -8}, "smile": {"smile": 3}, "young_smile": {"age": -6, "smile": 3}}
GPU_RULES = ("invert", "pti", "recon", "stitching", "baseline", "baseline_pti_frame")
COLUMNS = ["video", "method", "edit", "frames_used", "tl_id", "tg_id", "id_dist", "recon_psnr", "recon_ssim",
           "age_delta", "p_male_delta", "smile_delta", "spf_landmarks", "spf_invert", "spf_pti", "spf_render",
           "spf_paste", "spf_encode", "spf_pipeline", "spf_metrics"]


def shared_videos(names: list[str] | None) -> list[Path]:
    """The videos of ``../shared/data/videos`` (only ``names`` when given); exits when there are none."""
    videos = [v for v in sorted((SHARED / "videos").glob("*.mp4")) if not names or v.stem in names]
    if not videos:
        sys.exit(f"no videos found in {SHARED / 'videos'}")
    return videos


def cut_input(work: Path, video: Path, frames: int | None) -> Path:
    """``<work>/inputs/<stem>.mp4``: the first ``frames`` frames of ``video`` (cut once); the video itself when
    ``frames`` is None."""
    if not frames:
        return video.resolve()
    clip = work / "inputs" / f"{video.stem}.mp4"
    clip.parent.mkdir(parents=True, exist_ok=True)
    if not clip.is_file() or probe(clip).num_frames != min(frames, probe(video).num_frames):
        cut_clip(video, clip, 0, frames)
    return clip


def prepare(work: Path, videos: list[Path], frames: int, edits: list[str], pack: str, pti_epochs: int | None = None,
            stitching_steps: int | None = None) -> None:
    (work / "config").mkdir(parents=True, exist_ok=True)
    rows = [f"{v.stem}\t{cut_input(work, v, frames)}" for v in videos]
    (work / "config" / "samples.tsv").write_text("sample\tpath\n" + "\n".join(rows) + "\n")
    cfg = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    cfg.update(samples="config/samples.tsv", results="results", pack=pack, edits={e: EDITS[e] for e in edits},
               sweeps={}, methods=["e4e", "pti_frame", "no_stitch", "stit"])
    cfg["pti"]["epochs"] = pti_epochs  # None: the pack's default (demo: 40); pti_frame uses the same steps per frame
    cfg["stitching"]["max_steps"] = stitching_steps  # None: the pack's default (demo: 25)
    (work / "config" / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))


def snakemake(work: Path, *args: str, cores: int = 2) -> None:
    exe = Path(sys.executable).with_name("snakemake")
    # CPU only: the "GPU" stages may run side by side, one thread each (less oversubscription on a shared machine)
    cmd = [str(exe), *args, "-s", str(REPO / "Snakefile"), "-d", str(work), "--cores", str(cores),
           "--resources", f"gpu={cores}", "--set-threads", *(f"{r}=1" for r in GPU_RULES), "--rerun-incomplete"]
    print("+", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True, env={**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=48, help="first N frames of every video (default 48)")
    ap.add_argument("--work", type=Path, default=REPO / "results" / "bench_methods")
    ap.add_argument("--videos", nargs="*", help="video stems in ../shared/data/videos (default: all)")
    ap.add_argument("--edits", nargs="*", default=["older", "smile"], choices=sorted(EDITS))
    ap.add_argument("--pack", default="demo")
    ap.add_argument("--cores", type=int, default=2)
    ap.add_argument("--pti-epochs", type=int, help="PTI epochs (default: the pack's, demo 40)")
    ap.add_argument("--stitching-steps", type=int, help="stitching max steps per frame (default: the pack's, demo 25)")
    ap.add_argument("--skip-run", action="store_true", help="only print the tables of an earlier run")
    a = ap.parse_args()

    videos = shared_videos(a.videos)
    work = a.work.resolve()
    t0 = time.time()
    if not a.skip_run:
        prepare(work, videos, a.frames, a.edits, a.pack, a.pti_epochs, a.stitching_steps)
        snakemake(work, "paper", cores=a.cores)
        snakemake(work, "paper", "--report", str(work / "report.html"), cores=a.cores)
    tables = work / "results" / "tables" / "paper"
    metrics, methods = pd.read_csv(tables / "metrics.csv"), pd.read_csv(tables / "methods.csv")
    table = metrics[[c for c in COLUMNS if c in metrics]]
    table.to_csv(work / "bench_methods.csv", index=False, float_format="%.6g")
    methods.to_csv(work / "bench_methods_summary.csv", index=False, float_format="%.6g")
    cfg = yaml.safe_load((work / "config" / "config.yaml").read_text())
    print(f"\n## Methods compared: {len(videos)} videos x first {a.frames} frames, pack {a.pack}, edits "
          f"{', '.join(a.edits)}, PTI epochs {cfg['pti']['epochs'] or 'pack default'}, stitching steps "
          f"{cfg['stitching']['max_steps'] or 'pack default'} (wall clock {time.time() - t0:.0f} s)\n")
    print(markdown(table))
    print("\n### Means per method (over videos; edits vs reconstruction)\n")
    print(markdown(methods))
    print(f"\nsaved {work / 'bench_methods.csv'}, {work / 'bench_methods_summary.csv'}; report {work / 'report.html'}")


if __name__ == "__main__":
    main()
