"""Peak RSS of decoding a 1080p video as it gets longer, with glibc's dynamic mmap threshold and with the fixed
1 MB threshold every rule sets (``stitch.memory.fixed_mmap_threshold``; issue #12: a job's memory must not grow
with the video's length). The child processes import no torch (a rule job does, and allocates differently).

    python benchmarks/bench_malloc.py [--frames 40 320 1200] [--source talk_1] [--work results/bench_malloc]
    python benchmarks/bench_malloc.py --torch [--rounds 2]

Builds ``<work>/<source>_1080p.mp4`` once (the source's frames enlarged into 1920x1080, looped to the largest
size), then for each size and mode decodes that many frames in a fresh process (``stitch.video.iter_frames``, as
the per-frame stages do) and prints its peak RSS (``VmHWM``).

``--torch``: what the threshold does to a tuning job, which decodes no video (``stitch.smk.setup_torch``): in a
fresh process per threshold (glibc default, fixed 1 MB, 4 MB, 16 MB), alternating, ``--rounds`` times, the demo
pack's generator renders 540 random pivots as PTI's PSNR check does (``stitch.pti.frames_psnr``), then PTI tunes
200 of them for one epoch (200 steps at ``fast``'s settings, with the edit regulariser, and its renders of the 200
before and after), one torch thread; prints the seconds, the system (kernel) seconds and the page faults of each.
Then the peak RSS of ``fast``'s PTI (4 epochs) streaming 300 random frames from 3 shard files, and the same shard
files listed 4 times (1,200 frames: the same poses, so the same keyframes), per threshold.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_landmarks import to_1080p  # noqa: E402
from bench_methods import REPO, SHARED  # noqa: E402

from stitch.video import iter_frames, probe, write_video  # noqa: E402

CHILD = """
import itertools, re, sys
sys.path.insert(0, {repo!r})
from stitch.memory import fixed_mmap_threshold
from stitch.video import iter_frames
if {fixed}:
    assert fixed_mmap_threshold()
for frame in itertools.islice(iter_frames({video!r}), {n}):
    frame = frame.copy()  # as a stage would hold it for a moment
# VmHWM: this process's own peak (ru_maxrss would carry the parent's over fork + exec)
print(int(re.search(r"VmHWM:\\s+(\\d+) kB", open("/proc/self/status").read()).group(1)) // 1024)
"""

TORCH_PREAMBLE = """
import re, resource, sys, time
sys.path.insert(0, {repo!r})
from stitch.memory import fixed_mmap_threshold
if {nbytes}:
    assert fixed_mmap_threshold({nbytes})
import numpy as np, torch
torch.set_num_threads(1)
from stitch.configs import SCHEDULES, PTIConfig
from stitch.packs import Pack
from stitch.pti import edit_space, frames_psnr, pti_tune
from stitch.pti_frames import ArrayFrames, TrackFrames
pack = Pack.open({pack!r})
"""

TORCH_CHILD = TORCH_PREAMBLE + """
G = pack.generator()
rng = np.random.default_rng(0)
ws = (G.mapping.w_avg + 0.3 * torch.randn(540, G.w_dim, generator=torch.Generator().manual_seed(0)))
ws = ws[:, None].repeat(1, G.num_ws, 1).numpy()
crops = rng.integers(0, 256, (540, G.img_resolution, G.img_resolution, 3), np.uint8)
def usage():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return time.perf_counter(), r.ru_stime, r.ru_minflt
a = usage()
frames_psnr(G, ArrayFrames(ws, crops))
b = usage()
settings = {{**SCHEDULES["fast"]["pti"], "epochs": 1, "keyframes": 0, "refine_frames": 0, "max_steps_per_frame": 0,
             "edit_reg_weight": 1.0}}
cfg = PTIConfig.from_settings(settings)
pti_tune(G, ws[:200], crops[:200], cfg, progress=False, space=edit_space(pack.directions))
c = usage()
print(*(round(y - x, 2) for x, y in zip(a, b)), *(round(y - x, 2) for x, y in zip(b, c)))
"""


RSS_CHILD = TORCH_PREAMBLE + """
crops, pivots = {crops!r} * {rep}, {pivots!r} * {rep}
cfg = PTIConfig.from_settings({{**SCHEDULES["fast"]["pti"], "epochs": 4, "edit_reg_weight": 1.0}})
frames = TrackFrames(crops, pivots, 0)
# a video's variety, not its length: the poses of one listing of the shards, again in every listing
features = np.tile(0.05 * np.random.default_rng(0).normal(size=(len(frames) // {rep}, 8)), ({rep}, 1))
pti_tune(pack.generator(), None, None, cfg, progress=False, space=edit_space(pack.directions), features=features,
         frames=frames)
print(int(re.search(r"VmHWM:\\s+(\\d+) kB", open("/proc/self/status").read()).group(1)) // 1024)
"""


def random_shards(work: Path, res: int, w_dim: int, num_ws: int, shards: int = 3, n: int = 100) -> tuple[list, list]:
    """``shards`` crop / pivot shard files of ``n`` random frames each (one face, every frame valid)."""
    from stitch.latents import Latents
    from stitch.stagefiles import Crops

    rng, crops, pivots = np.random.default_rng(0), [], []
    for k in range(shards):
        crops.append(str(work / f"crop_{k:04d}.npz"))
        pivots.append(str(work / f"invert_{k:04d}.npy"))
        Crops(rng.integers(0, 256, (1, n, res, res, 3), np.uint8), np.ones((1, n), bool), np.zeros((1, n, 4, 2)),
              np.array([0], np.int64)).save(crops[-1])
        Latents(0.1 * rng.standard_normal((1, n, num_ws, w_dim)).astype(np.float32)).save(pivots[-1])
    return crops, pivots


DEMO_PACK = REPO / "resources" / "models" / "demo"
#: the thresholds compared by --torch (0: glibc's own)
TORCH_MODES = {"glibc default": 0, "fixed 1 MB": 1 << 20, "fixed 4 MB": 4 << 20, "fixed 16 MB": 16 << 20}


def _child(code: str) -> str:
    """stdout of ``code`` run in a fresh Python with one torch thread and the passive OpenMP wait."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OMP_WAIT_POLICY": "PASSIVE"}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env).stdout


def torch_seconds(rounds: int) -> None:
    """The --torch timing table (see the module doc)."""
    print("| round | threshold | PSNR pass of 540 frames: s (sys s, page faults) | PTI, 200 steps + 400 renders: "
          "s (sys s, page faults) |\n|---|---|---|---|")
    for r in range(rounds):
        for name, nbytes in TORCH_MODES.items():
            t1, s1, f1, t2, s2, f2 = _child(TORCH_CHILD.format(repo=str(REPO), nbytes=nbytes, pack=str(DEMO_PACK)))\
                .split()
            print(f"| {r + 1} | {name} | {t1} ({s1}, {int(float(f1)):,}) | {t2} ({s2}, {int(float(f2)):,}) |",
                  flush=True)


def torch_rss() -> None:
    """The --torch peak RSS table (see the module doc)."""
    from stitch.packs import Pack

    G = Pack.open(DEMO_PACK).generator()
    with tempfile.TemporaryDirectory() as tmp:
        crops, pivots = random_shards(Path(tmp), G.img_resolution, G.w_dim, G.num_ws)
        print("\n| threshold | PTI peak RSS, 300 frames (MB) | 1,200 frames (MB) | growth |\n|---|---|---|---|")
        for name, nbytes in TORCH_MODES.items():
            rss = [int(_child(RSS_CHILD.format(repo=str(REPO), nbytes=nbytes, pack=str(DEMO_PACK), crops=crops,
                                               pivots=pivots, rep=rep))) for rep in (1, 4)]
            print(f"| {name} | {rss[0]} | {rss[1]} | {rss[1] / rss[0]:.3f} |", flush=True)


def build(src: Path, out: Path, frames: int) -> None:
    if out.is_file() and probe(out).num_frames >= frames:
        return
    base = [to_1080p(f) for f in iter_frames(src)]
    write_video(out, (base[i % len(base)] for i in range(frames)), probe(src).fps, total=frames)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--frames", type=int, nargs="+", default=[40, 320, 1200])
    ap.add_argument("--source", default="talk_1")
    ap.add_argument("--work", type=Path, default=REPO / "results" / "bench_malloc")
    ap.add_argument("--torch", action="store_true", help="the fixed threshold's cost to a tuning job instead")
    ap.add_argument("--rounds", type=int, default=2, help="--torch: rounds over the thresholds")
    args = ap.parse_args()
    if args.torch:
        torch_seconds(args.rounds)
        return torch_rss()
    args.work.mkdir(parents=True, exist_ok=True)
    video = args.work / f"{args.source}_1080p.mp4"
    build(SHARED / "videos" / f"{args.source}.mp4", video, max(args.frames))
    print("| frames | peak RSS, glibc default (MB) | peak RSS, fixed 1 MB mmap threshold (MB) |\n|---|---|---|")
    for n in args.frames:
        rss = [int(subprocess.run([sys.executable, "-c", CHILD.format(repo=str(REPO), fixed=fixed, video=str(video),
                                                                       n=n)],
                                  capture_output=True, text=True, check=True).stdout) for fixed in (False, True)]
        print(f"| {n} | {rss[0]} | {rss[1]} |", flush=True)


if __name__ == "__main__":
    main()
