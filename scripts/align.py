"""Rule align: smoothed FFHQ quads for the selected face tracks (stitch.align)."""

import _repo  # noqa: F401  (puts the repo on sys.path)

from stitch.align import run
from stitch.smk import setup

setup(snakemake)
p = snakemake.params
run(snakemake.input.tracks, snakemake.output.quads, faces=p.faces, center_sigma=p.center_sigma,
    xy_sigma=p.xy_sigma, max_gap=p.max_gap, scale=p.scale)
