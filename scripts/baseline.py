"""Rule baseline: e4e / no_stitch face crops for one edit (stitch.baseline.run)."""

import _repo  # noqa: F401  (puts the repo on sys.path)

from stitch.baseline import run
from stitch.smk import setup_torch

device = setup_torch(snakemake)
i = snakemake.input
run(snakemake.wildcards.method, snakemake.params.pack, i.latents, i.crops, snakemake.output.crops,
    generators=i.get("generators"), device=device, shard=int(snakemake.wildcards.shard),
    shard_frames=snakemake.params.shard_frames)
