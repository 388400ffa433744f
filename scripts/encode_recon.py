"""Rule encode_recon: a method's reconstruction segments joined with the source audio (stitch.encode.run_recon)."""

import _repo  # noqa: F401  (puts the repo on sys.path)

from stitch.encode import run_recon
from stitch.smk import setup

setup(snakemake)
i = snakemake.input
run_recon(i.segments, i.info, i.audio, snakemake.output.video)
