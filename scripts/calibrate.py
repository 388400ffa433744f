"""Rule calibrate: the factors that reach an edit's targets in probe units on one video (stitch.calibrate)."""

import _repo  # noqa: F401  (puts the repo on sys.path)

from stitch.calibrate import run
from stitch.smk import setup_torch

device = setup_torch(snakemake)
i, o, p = snakemake.input, snakemake.output, snakemake.params
run(i.video, i.quads, i.masks, i.pivots, i.generators, p.pack, i.probe, p.raw, p.targets, p.settings, o.calibration,
    name=snakemake.wildcards.edit, feather=p.feather, mode=p.mode, device=device)
