"""Rule describe: one shard of a method's encoded edit: identity descriptors, attribute probes, reconstruction
quality and seam columns (stitch.describe.run)."""

import _repo  # noqa: F401  (puts the repo on sys.path)

from stitch.describe import run
from stitch.smk import setup_torch

device = setup_torch(snakemake, video_frames=True)  # decodes the video's frames
i, p = snakemake.input, snakemake.params
run(i.source_video, i.video, i.info, int(snakemake.wildcards.shard), p.shard_frames, i.crops, i.recon, i.masks,
    i.quads, p.pack, i.probe, snakemake.output.describe, feather=p.feather, device=device,
    detect_long_side=p.detect_long_side)
