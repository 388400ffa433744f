"""Rule invert: e4e pivots (stitch.invert)."""

import _repo  # noqa: F401  (puts the repo on sys.path)

from stitch.invert import run
from stitch.smk import setup_torch

device = setup_torch(snakemake)
run(snakemake.input.crops, snakemake.params.pack, snakemake.output.pivots, device=device)
