"""Rule zoo_train: train the demo pack's generator + encoder (resumable; stitch.zoo.train)."""

import _repo  # noqa: F401  (puts the repo on sys.path)

from stitch.smk import setup
from stitch.zoo import stage_config
from stitch.zoo.train import TrainConfig, train

setup(snakemake)
train(snakemake.input.data, snakemake.params.work,
      stage_config(TrainConfig, snakemake.params.settings, "train", threads=snakemake.threads))
