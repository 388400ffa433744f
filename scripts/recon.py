"""Rule recon: PTI reconstruction crops, no edit (stitch.recon)."""

import _repo  # noqa: F401  (puts the repo on sys.path)

from stitch.recon import run
from stitch.smk import setup_torch

device = setup_torch(snakemake)
i = snakemake.input
run(i.generators, i.pivots, i.crops, snakemake.output.crops, device=device, shard=int(snakemake.wildcards.shard),
    shard_frames=snakemake.params.shard_frames)
