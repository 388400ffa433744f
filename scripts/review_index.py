"""Rule review_index: results/review.html over every video's review page (stitch.review.run_index)."""

import _repo  # noqa: F401  (puts the repo on sys.path)

from stitch.review import run_index
from stitch.smk import setup

setup(snakemake)
i, p = snakemake.input, snakemake.params
run_index(dict(zip(p.videos, i.pages)), dict(zip(p.videos, i.infos)), p.summaries, snakemake.output.page)
