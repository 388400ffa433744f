"""Torch threads and the OpenMP wait policy on a busy machine: PTI and stitching step times, idle vs busy.

    python benchmarks/bench_threads.py [--steps 40] [--repeats 3]

Each variant runs in a fresh process (the wait policy is read when torch starts): ``threads`` 1 or 2 x
``OMP_WAIT_POLICY`` unset (OpenMP's default) or PASSIVE, on an idle machine and with one other CPU-bound process
running (a pure-Python busy loop). A step is the real code path: ``stitch.pti.pti_tune`` (forward + backward + Adam,
batch 1) and ``stitch.stitching.stitch_frame`` with the demo pack's generator. Prints the median time per step of
each variant and the busy / idle ratio. Run it with nothing else busy on the machine.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CHILD = r"""
import json, sys, time
import numpy as np, torch
sys.path.insert(0, {root!r})
from stitch.configs import PTIConfig, StitchingConfig
from stitch.packs import Pack
from stitch.pti import pti_tune
from stitch.stitching import stitch_frame
torch.set_num_threads({threads})
G = Pack.open("demo").generator()
rng = np.random.default_rng(0)
ws = G.mapping(torch.randn(4, G.z_dim, generator=torch.Generator().manual_seed(0))).detach().numpy()
crops = rng.integers(0, 255, (4, G.img_resolution, G.img_resolution, 3), dtype=np.uint8)
pti_tune(G, ws, crops, PTIConfig(epochs=1, lr=3e-4), progress=False)  # warm-up
t = time.perf_counter(); pti_tune(G, ws, crops, PTIConfig(epochs={steps} // 4, lr=3e-4), progress=False)
pti = (time.perf_counter() - t) / ({steps} // 4 * 4)
r = G.img_resolution
orig = torch.rand(1, 3, r, r) * 2 - 1
border = torch.zeros(1, 1, r, r); border[..., :4, :] = 1
content = 1 - border
cfg = StitchingConfig(max_steps={steps}, border_threshold=0.0)
t = time.perf_counter(); _, st = stitch_frame(G, torch.as_tensor(ws[:1]), orig, border, content, cfg)
stitching = (time.perf_counter() - t) / st["steps"]
print(json.dumps({{"pti": pti, "stitching": stitching}}))
"""


def busy_loop(stop) -> None:
    x = 0
    while not stop.is_set():
        for i in range(100_000):
            x += i * i


def measure(threads: int, policy: str | None, steps: int) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "OMP_NUM_THREADS")}
    if policy:
        env["OMP_WAIT_POLICY"] = policy
    code = CHILD.format(root=str(ROOT), threads=threads, steps=steps)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    variants = [(1, None), (1, "PASSIVE"), (2, None), (2, "PASSIVE")]
    rows = []
    for load in ("idle", "busy"):
        stop = mp.Event()
        proc = mp.Process(target=busy_loop, args=(stop,)) if load == "busy" else None
        if proc:
            proc.start()
            time.sleep(1.0)
        try:
            for threads, policy in variants:
                runs = [measure(threads, policy, args.steps) for _ in range(args.repeats)]
                rows.append({"load": load, "threads": threads, "policy": policy or "default",
                             **{k: statistics.median(r[k] for r in runs) for k in ("pti", "stitching")}})
                print(f"{load:4s} threads={threads} OMP_WAIT_POLICY={policy or 'default':7s} "
                      f"pti {rows[-1]['pti'] * 1e3:7.1f} ms/step  stitching {rows[-1]['stitching'] * 1e3:7.1f} ms/step",
                      flush=True)
        finally:
            if proc:
                stop.set()
                proc.join()
    print("\n| threads | OMP_WAIT_POLICY | PTI idle (ms) | PTI busy (ms) | busy/idle | stitching idle (ms) | "
          "stitching busy (ms) | busy/idle |\n|---|---|---|---|---|---|---|---|")
    for threads, policy in variants:
        idle, busy = (next(r for r in rows if r["load"] == ld and r["threads"] == threads
                           and r["policy"] == (policy or "default")) for ld in ("idle", "busy"))
        print(f"| {threads} | {policy or 'default'} | {idle['pti'] * 1e3:.1f} | {busy['pti'] * 1e3:.1f} | "
              f"{busy['pti'] / idle['pti']:.2f} | {idle['stitching'] * 1e3:.1f} | {busy['stitching'] * 1e3:.1f} | "
              f"{busy['stitching'] / idle['stitching']:.2f} |")


if __name__ == "__main__":
    main()
