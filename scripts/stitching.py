"""Rule stitching: per-frame stitching tuning of the edited faces (stitch.stitching)."""

from stitch.stitching import run
from stitch.smk import setup

device = setup(snakemake)
i = snakemake.input
run(i.generators, i.latents, i.crops, i.masks, snakemake.params.settings, snakemake.output.crops, device=device)
