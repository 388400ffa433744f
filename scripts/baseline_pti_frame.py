"""Rule baseline_pti_frame: per-frame PTI crops for every edit (stitch.baseline.run_pti_frame)."""

import _repo  # noqa: F401  (puts the repo on sys.path)

from stitch.baseline import run_pti_frame
from stitch.smk import setup_torch

device = setup_torch(snakemake)
i, p = snakemake.input, snakemake.params
run_pti_frame(p.pack, i.pivots, i.crops, dict(zip(p.edits, i.latents)), p.settings,
              dict(zip(["_recon", *p.edits], snakemake.output.crops)), device=device,
              shard=int(snakemake.wildcards.shard), shard_frames=p.shard_frames)
