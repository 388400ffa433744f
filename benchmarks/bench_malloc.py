"""Peak RSS of decoding a 1080p video as it gets longer, with glibc's dynamic mmap threshold and with the fixed
1 MB threshold every rule sets (``stitch.memory.fixed_mmap_threshold``; issue #12: a job's memory must not grow
with the video's length). The child processes import no torch (a rule job does, and allocates differently).

    python benchmarks/bench_malloc.py [--frames 40 320 1200] [--source talk_1] [--work results/bench_malloc]

Builds ``<work>/<source>_1080p.mp4`` once (the source's frames enlarged into 1920x1080, looped to the largest
size), then for each size and mode decodes that many frames in a fresh process (``stitch.video.iter_frames``, as
the per-frame stages do) and prints its peak RSS (``VmHWM``).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

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
    args = ap.parse_args()
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
