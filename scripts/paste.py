"""Rule paste: un-align the edited crops and composite them onto the original frames (stitch.paste)."""

import _repo  # noqa: F401  (puts the repo on sys.path)

from stitch.paste import run
from stitch.smk import setup

setup(snakemake)
i = snakemake.input
p = snakemake.params
run(i.video, i.crops, i.quads, i.masks, snakemake.output.frames, feather=p.feather, mode=p.mode,
    recon_npz=i.get("recon"), envelope_json=i.get("envelope"))
