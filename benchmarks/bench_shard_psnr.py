"""Sharded vs unsharded output of a finished workflow run (issue #12, item 3: within codec noise, PSNR >= 45 dB on
every frame, identical audio).

    python benchmarks/bench_shard_psnr.py --work DIR [--video talk_1] [--method stit] [--edit older]
    python benchmarks/bench_shard_psnr.py --run talk_1 [--shard-frames 20] [--work results/bench_shard_psnr]

``--work``: a Snakemake work folder whose ``results/<video>/encode/<method>/<edit>.mp4`` was made in shards (the
stage files of a ``generator`` paste: ``stitching/<edit>/*.npz`` for stit, ``masks/*.npz``, ``align/quads.npz``,
``frames/``). ``--run VIDEO`` first makes one: the workflow on ``../shared/data/videos/VIDEO.mp4`` at full length
with the demo pack in shards of ``--shard-frames`` (method stit, edit older: age +8, 2 PTI epochs, 2 stitching
steps), target the edited video.

The unsharded output is made from the same stage files with the library: ``stitch.paste.run`` with every shard's
crops and masks as one shard of the whole video, then ``stitch.segments.concat`` of that one segment with the
source audio, as ``encode`` does. Both videos are decoded; printed: frames, min / mean / median PSNR per frame
(dB), the 5 worst frames with their position in their shard (a shard's first frame is a keyframe of the sharded
encode), and whether the audio packets are byte-identical.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np
import yaml

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_methods import REPO, SHARED, snakemake  # noqa: E402

from stitch.video import iter_frames  # noqa: E402

BAR_DB = 45.0


def make_run(work: Path, video: str, shard_frames: int) -> Path:
    """A work folder with ``video`` edited in shards (skipped when its edited video exists)."""
    (work / "config").mkdir(parents=True, exist_ok=True)
    (work / "config" / "samples.tsv").write_text(f"sample\tpath\n{video}\t{SHARED / 'videos' / f'{video}.mp4'}\n")
    cfg = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    cfg.update(samples="config/samples.tsv", results="results", pack="demo", edits={"older": {"age": 8}}, sweeps={},
               methods=["stit"], shard_frames=shard_frames)
    cfg["pti"]["epochs"], cfg["stitching"]["max_steps"] = 2, 2
    (work / "config" / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    snakemake(work, f"results/{video}/encode/stit/older.mp4", cores=2)
    return work


def source_path(work: Path, video: str) -> Path:
    """The sample's video as config/samples.tsv names it."""
    import pandas as pd

    rows = pd.read_csv(work / "config" / "samples.tsv", sep="\t", dtype=str).set_index("sample")
    return (work / rows.loc[video, "path"]).resolve()


def unsharded(res: Path, source: Path, method: str, edit: str, out: Path) -> Path:
    """The edited video of ``res`` (results/<video>) pasted as one shard and joined as encode joins."""
    from stitch.paste import run as paste
    from stitch.segments import concat

    info_json = res / "frames" / "info.json"
    info = json.loads(info_json.read_text())
    settings = yaml.safe_load((res / "settings.yaml").read_text())
    if settings["paste"]["mode"]["value"] != "generator" or method != "stit":
        sys.exit("only method stit with paste.mode generator is re-pasted here")
    crops = sorted((res / "stitching" / edit).glob("*.npz"))
    masks = sorted((res / "masks").glob("*.npz"))
    segment = out.with_suffix(".segment.mp4")
    paste(source, crops, res / "align" / "quads.npz", masks, info_json, 0,
          info["num_frames"], segment, feather=settings["paste"]["feather"]["value"],
          envelope_json=res / "edit" / f"{edit}.json")
    audio = res / "frames" / "audio.wav"
    concat([segment], out, info, audio if audio.is_file() and audio.stat().st_size else None)
    return out


def audio_packets(path: Path) -> list[bytes]:
    import av

    with av.open(str(path)) as c:
        if not c.streams.audio:
            return []
        return [bytes(p) for p in c.demux(c.streams.audio[0]) if p.size]


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else float(10 * np.log10(255.0**2 / mse))


def compare(sharded: Path, whole: Path, shard_frames: int) -> dict:
    values = [psnr(a, b) for a, b in zip(iter_frames(sharded), iter_frames(whole), strict=True)]
    v = np.array(values)
    worst = np.argsort(v)[:5]
    return {"frames": len(v), "min_db": float(v.min()), "mean_db": float(v[np.isfinite(v)].mean()),
            "median_db": float(np.median(v)), "identical_frames": int(np.isinf(v).sum()),
            "worst": [(int(t), int(t % shard_frames), round(float(v[t]), 2)) for t in worst],
            "audio_identical": audio_packets(sharded) == audio_packets(whole)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", type=Path, help="a finished work folder (default with --run: results/bench_shard_psnr)")
    ap.add_argument("--run", metavar="VIDEO", help="first run the workflow on this video of ../shared/data/videos")
    ap.add_argument("--shard-frames", type=int, default=20)
    ap.add_argument("--video", help="the sample (default: --run's video)")
    ap.add_argument("--method", default="stit")
    ap.add_argument("--edit", default="older")
    a = ap.parse_args()
    work = (a.work or REPO / "results" / "bench_shard_psnr").resolve()
    if a.run:
        make_run(work, a.run, a.shard_frames)
    video = a.video or a.run
    res = work / "results" / video
    shard_frames = yaml.safe_load((res / "settings.yaml").read_text())["shard_frames"]["value"]
    with tempfile.TemporaryDirectory() as tmp:
        whole = unsharded(res, source_path(work, video), a.method, a.edit, Path(tmp) / "whole.mp4")
        r = compare(res / "encode" / a.method / f"{a.edit}.mp4", whole, shard_frames)
    print(f"{video} {a.method}/{a.edit}, shards of {shard_frames}: {r['frames']} frames, PSNR sharded vs unsharded "
          f"min {r['min_db']:.2f} dB, mean {r['mean_db']:.2f}, median {r['median_db']:.2f}, "
          f"{r['identical_frames']} frames identical; audio packets identical: {r['audio_identical']}")
    print("worst frames (frame, position in its shard, dB):", r["worst"])
    print(f"{'PASS' if r['min_db'] >= BAR_DB and r['audio_identical'] else 'FAIL'}  every frame >= {BAR_DB} dB and "
          "identical audio")


if __name__ == "__main__":
    main()
