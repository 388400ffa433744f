"""Rule review_source: the original as H.264 + audio for the review page (stitch.review.run_source)."""

import _repo  # noqa: F401  (puts the repo on sys.path)

from stitch.review import run_source
from stitch.smk import setup

setup(snakemake)
i = snakemake.input
run_source(i.video, i.info, i.audio, snakemake.output.video)
