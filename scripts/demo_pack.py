"""Rule demo_pack: assemble the demo pack folder under results/zoo/pack/ (stitch.packs.demo)."""

import _repo  # noqa: F401  (puts the repo on sys.path)

from stitch.packs.demo import run
from stitch.smk import setup

setup(snakemake)
i = snakemake.input
run(i.generator, i.encoder, i.train_metrics, i.adversarial_metrics, i.directions, i.direction_stats, i.data,
    snakemake.output.manifest)
