"""Rule democlip: the demo input clip (stitch.democlip)."""

import _repo  # noqa: F401  (puts the repo on sys.path)

from stitch.democlip import make_demo_clip
from stitch.smk import setup

setup(snakemake)
p = snakemake.params
make_demo_clip(snakemake.output.video, seconds=p.seconds, fps=p.fps, size=p.size)
