"""Rule masks: face segmentation and stitching masks (stitch.masks)."""

import _repo  # noqa: F401  (puts the repo on sys.path)

from stitch.masks import run
from stitch.smk import setup_torch

device = setup_torch(snakemake)
p = snakemake.params
run(snakemake.input.crops, snakemake.input.tracks, snakemake.output.masks, method=p.method, pack=p.pack, device=device,
    shard=int(snakemake.wildcards.shard), shard_frames=p.shard_frames)
