"""Rule frames: video facts + audio (stitch.frames)."""

from stitch.frames import run
from stitch.smk import setup

setup(snakemake)
run(snakemake.input.video, snakemake.output.info, snakemake.output.audio)
