"""Rule tables (and tables_paper): metric and timing tables over all videos (stitch.tables.run)."""

import _repo  # noqa: F401  (puts the repo on sys.path)

from stitch.smk import setup
from stitch.tables import run

setup(snakemake)
o = snakemake.output
run(list(snakemake.input.summaries), snakemake.params.benchmarks, o.metrics, o.methods, o.timings, o.get("html"),
    work=snakemake.params.work)
