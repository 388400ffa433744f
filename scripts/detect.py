"""Rule detect: one shard's faces and landmarks (stitch.detect)."""

import _repo  # noqa: F401  (puts the repo on sys.path)

from stitch.detect import run
from stitch.smk import setup

setup(snakemake)
p = snakemake.params
run(snakemake.input.video, snakemake.input.info, snakemake.output.detections, shard=int(snakemake.wildcards.shard),
    shard_frames=p.shard_frames, upsample=p.upsample, detect_long_side=p.detect_long_side)
