"""Rule ffhq_pack: the ffhq pack from the official files (stitch.packs.ffhq)."""

import _repo  # noqa: F401  (puts the repo on sys.path)

from pathlib import Path

from stitch.packs.ffhq import build_ffhq_pack
from stitch.smk import setup

setup(snakemake)
build_ffhq_pack(Path(snakemake.output.manifest).parent, download=snakemake.params.download)
