"""Rule edit: edited latents and the per-frame envelope of one edit (stitch.edit)."""

import _repo  # noqa: F401  (puts the repo on sys.path)

from stitch.edit import run
from stitch.smk import setup

setup(snakemake)
i, o, p = snakemake.input, snakemake.output, snakemake.params
run(i.pivots, p.pack, p.factors, o.latents, i.info, time_range=p.time_range, envelope_json=o.envelope,
    name=snakemake.wildcards.edit, calibration_json=i.get("calibration"), multiplier=p.multiplier)
