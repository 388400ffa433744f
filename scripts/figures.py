"""Rule figures (and figures_paper): the evaluation figures of one video (stitch.figures.run)."""

import _repo  # noqa: F401  (puts the repo on sys.path)

from stitch.figures import run
from stitch.smk import setup

setup(snakemake)
i, o = snakemake.input, snakemake.output
run(i.video, i.info, i.quads, snakemake.params.layout, dict(o.items()), title=snakemake.wildcards.video)
