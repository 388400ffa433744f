"""Imported first by every rule script. Makes the repository's ``stitch`` package importable (also when Snakemake
runs the script in a ``--use-conda`` environment where Stitch itself is not installed: Snakemake puts this folder
on ``sys.path``), and sets the OpenMP wait policy before torch starts: with the default (spinning) policy a torch
job with 2 threads runs ~30x slower as soon as any other process wants a core (benchmarks/bench_threads.py, README
"Threads"). A value set by the user is kept."""

import os
import sys
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

ROOT = str(Path(__file__).resolve().parents[1])
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)
