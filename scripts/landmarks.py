"""Rule landmarks: link the detect shards' faces into tracks (stitch.landmarks)."""

import _repo  # noqa: F401  (puts the repo on sys.path)

from stitch.landmarks import run
from stitch.smk import setup

setup(snakemake)
run(snakemake.input.video, list(snakemake.input.detections), snakemake.output.tracks, **snakemake.params.settings)
