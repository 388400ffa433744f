"""Rule settings: write the video's resolved settings with their sources and verify its pack (stitch.settings)."""

import _repo  # noqa: F401  (puts the repo on sys.path)

from stitch.settings import run
from stitch.smk import setup

setup(snakemake)
run(snakemake.params.document, snakemake.output.settings, snakemake.params.pack)
