"""Rule landmarks: detect, landmark and track every face (stitch.landmarks)."""

import _repo  # noqa: F401  (puts the repo on sys.path)

from stitch.landmarks import run
from stitch.smk import setup

setup(snakemake)
run(snakemake.input.video, snakemake.output.tracks, **snakemake.params.settings)
