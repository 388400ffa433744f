"""Rule stitching: per-frame stitching tuning of the edited faces (stitch.stitching)."""

import _repo  # noqa: F401  (puts the repo on sys.path)

from stitch.stitching import run
from stitch.smk import setup_torch

device = setup_torch(snakemake)
i = snakemake.input
run(i.generators, i.latents, i.crops, i.masks, snakemake.params.settings, snakemake.output.crops, device=device,
    envelope_json=i.envelope, shard=int(snakemake.wildcards.shard), shard_frames=snakemake.params.shard_frames)
