"""Rule zoo_publish: ship the demo pack and the attribute probe to resources/ (stitch.zoo.publish)."""

import _repo  # noqa: F401  (puts the repo on sys.path)

from stitch.smk import setup
from stitch.zoo.publish import run

setup(snakemake)
i, p = snakemake.input, snakemake.params
run({"pack": (list(i.pack), p.pack), "probe": (list(i.probe), p.probe)}, snakemake.output.receipt)
