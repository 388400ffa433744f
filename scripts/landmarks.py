"""Rule landmarks: detect, landmark and track every face (stitch.landmarks)."""

import _repo  # noqa: F401  (puts the repo on sys.path)

from stitch.landmarks import run
from stitch.smk import setup

setup(snakemake)
p = snakemake.params
run(snakemake.input.video, snakemake.output.tracks, upsample=p.upsample, max_gap=p.max_gap, min_track_frac=p.min_track_frac)
