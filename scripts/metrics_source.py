"""Rule metrics_source: the source's describe shards joined (stitch.metrics.run_source)."""

import _repo  # noqa: F401  (puts the repo on sys.path)

from stitch.metrics import run_source
from stitch.smk import setup

setup(snakemake)
run_source(snakemake.input.shards, snakemake.output.source)
