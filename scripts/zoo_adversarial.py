"""Rule zoo_adversarial: adversarial fine-tuning of the demo pack's generator + encoder (stitch.zoo.adversarial)."""

import _repo  # noqa: F401  (puts the repo on sys.path)

from stitch.smk import setup
from stitch.zoo import stage_config
from stitch.zoo.adversarial import AdversarialConfig, train_adversarial

setup(snakemake)
i = snakemake.input
train_adversarial(i.data, i.generator, i.encoder, snakemake.params.work,
                  stage_config(AdversarialConfig, snakemake.params.settings, "adversarial", threads=snakemake.threads))
