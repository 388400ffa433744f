"""Rule crop: one shard's aligned crops at the pack's resolution (stitch.crop)."""

import _repo  # noqa: F401  (puts the repo on sys.path)

from stitch.crop import run
from stitch.smk import setup

setup(snakemake)
i, p = snakemake.input, snakemake.params
run(i.video, i.quads, i.info, snakemake.output.crops, size=p.size, shard=int(snakemake.wildcards.shard),
    shard_frames=p.shard_frames)
