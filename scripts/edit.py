"""Rule edit: edited latents for one edit (stitch.edit)."""

import _repo  # noqa: F401  (puts the repo on sys.path)

from stitch.edit import run
from stitch.smk import setup

setup(snakemake)
run(snakemake.input.pivots, snakemake.params.pack, snakemake.params.factors, snakemake.output.latents)
