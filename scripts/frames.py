"""Rule frames: video facts + audio (stitch.frames)."""

import _repo  # noqa: F401  (puts the repo on sys.path)

from stitch.frames import run
from stitch.smk import setup

setup(snakemake)
run(snakemake.input.video, snakemake.output.info, snakemake.output.audio)
