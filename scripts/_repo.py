"""Makes the repository's ``stitch`` package importable from rule scripts, also when Snakemake runs them in a
``--use-conda`` environment where Stitch itself is not installed (Snakemake puts this folder on ``sys.path``)."""

import sys
from pathlib import Path

ROOT = str(Path(__file__).resolve().parents[1])
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)
