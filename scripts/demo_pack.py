"""Rule demo_pack: assemble resources/models/demo (stitch.zoo_pack)."""

import _repo  # noqa: F401  (puts the repo on sys.path)

from stitch.smk import setup
from stitch.zoo_pack import run

setup(snakemake)
i = snakemake.input
run(i.generator, i.encoder, i.train_metrics, i.adversarial_metrics, i.directions, i.direction_stats,
    snakemake.output.manifest, align_scale=snakemake.params.align_scale)
