"""Rule paste: one shard of an edit, edited crops composited onto the original frames, as H.264 segments of the
edited video and of the side-by-side (stitch.paste)."""

import _repo  # noqa: F401  (puts the repo on sys.path)

from stitch.paste import run
from stitch.smk import setup

setup(snakemake)
i, o, p, w = snakemake.input, snakemake.output, snakemake.params, snakemake.wildcards
run(i.video, i.crops, i.quads, i.masks, i.info, int(w.shard), p.shard_frames, o.segment, feather=p.feather,
    mode=p.mode, recon_npz=i.get("recon"), envelope_json=i.get("envelope"), recon_video=i.recon_video,
    out_side_by_side=o.side_by_side, label=f"{w.method}: {w.edit}")
