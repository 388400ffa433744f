"""Rule zoo_probe: fit the age/gender attribute probe on UTKFace (stitch.zoo.probe)."""

import _repo  # noqa: F401  (puts the repo on sys.path)

from stitch.smk import setup
from stitch.zoo import stage_config
from stitch.zoo.probe import ProbeConfig, run

setup(snakemake)
run(snakemake.input.tar, snakemake.output.weights, stage_config(ProbeConfig, snakemake.params.settings, "probe"),
    cache=snakemake.params.cache)
