"""Rule metrics_source: identity descriptors and attribute probes of the source frames (stitch.metrics.run_source)."""

import _repo  # noqa: F401  (puts the repo on sys.path)

from stitch.metrics import run_source
from stitch.smk import setup

device = setup(snakemake)
run_source(snakemake.input.video, snakemake.params.pack, snakemake.input.probe, snakemake.output.source,
           device=device, detect_long_side=snakemake.params.detect_long_side)
