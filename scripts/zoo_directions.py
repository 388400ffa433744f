"""Rule zoo_directions: fit the demo pack's edit directions (stitch.zoo.directions)."""

import _repo  # noqa: F401  (puts the repo on sys.path)

from stitch.smk import setup
from stitch.zoo.directions import run

device = setup(snakemake)
run(snakemake.input.data, snakemake.input.encoder, snakemake.output.directions, snakemake.output.stats, device=device)
