"""Rule review: one video's offline review page (stitch.review.run)."""

import _repo  # noqa: F401  (puts the repo on sys.path)

from stitch.review import run
from stitch.smk import setup

setup(snakemake)
i = snakemake.input
run(snakemake.wildcards.video, i.info, i.source, snakemake.params.layout, snakemake.output.page)
