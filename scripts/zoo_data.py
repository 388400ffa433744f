"""Rule zoo_data: align UTKFace for demo-pack training (stitch.zoo.data)."""

import _repo  # noqa: F401  (puts the repo on sys.path)

from stitch.smk import setup
from stitch.zoo import stage_config
from stitch.zoo.data import DataConfig, build_dataset

setup(snakemake)
build_dataset(snakemake.input.tar, snakemake.output.data, stage_config(DataConfig, snakemake.params.settings, "data"),
              workers=snakemake.threads)
