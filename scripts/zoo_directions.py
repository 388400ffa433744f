"""Rule zoo_directions: fit the demo pack's edit directions (stitch.zoo.directions)."""

import _repo  # noqa: F401  (puts the repo on sys.path)

from stitch.smk import setup_torch
from stitch.zoo.directions import run

device = setup_torch(snakemake)
run(snakemake.input.data, snakemake.input.encoder, snakemake.output.directions, snakemake.output.stats, device=device)
