"""Rule pti: one tuned generator per face track (stitch.pti)."""

import _repo  # noqa: F401  (puts the repo on sys.path)

from stitch.pti import run
from stitch.smk import setup_torch

device = setup_torch(snakemake)
run(snakemake.input.crops, snakemake.input.pivots, snakemake.input.tracks, snakemake.params.pack, snakemake.params.settings,
    snakemake.output.generators, snakemake.output.stats, device=device)
