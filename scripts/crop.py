"""Rule crop: aligned crops at the pack's resolution (stitch.crop)."""

import _repo  # noqa: F401  (puts the repo on sys.path)

from stitch.crop import run
from stitch.smk import setup

setup(snakemake)
run(snakemake.input.video, snakemake.input.quads, snakemake.output.crops, size=snakemake.params.size)
