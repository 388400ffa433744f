"""Rule recon: PTI reconstruction crops, no edit (stitch.stitching.run_recon)."""

import _repo  # noqa: F401  (puts the repo on sys.path)

from stitch.smk import setup
from stitch.stitching import run_recon

device = setup(snakemake)
i = snakemake.input
run_recon(i.generators, i.pivots, i.crops, snakemake.output.crops, device=device)
