"""Rule paste_recon: one shard of a method's reconstruction composited onto the original frames, as an H.264
segment (stitch.paste)."""

import _repo  # noqa: F401  (puts the repo on sys.path)

from stitch.paste import run
from stitch.smk import setup

setup(snakemake)
i, p = snakemake.input, snakemake.params
run(i.video, i.crops, i.quads, i.masks, i.info, int(snakemake.wildcards.shard), p.shard_frames, snakemake.output.segment,
    feather=p.feather, mode=p.mode, recon_npz=i.get("recon"))
