"""Rule describe_source: one shard of the source frames' identity descriptors and attribute probes
(stitch.describe.run_source)."""

import _repo  # noqa: F401  (puts the repo on sys.path)

from stitch.describe import run_source
from stitch.smk import setup_torch

device = setup_torch(snakemake, video_frames=True)  # decodes the video's frames
i, p = snakemake.input, snakemake.params
run_source(i.video, i.info, int(snakemake.wildcards.shard), p.shard_frames, p.pack, i.probe,
           snakemake.output.describe, device=device, detect_long_side=p.detect_long_side)
