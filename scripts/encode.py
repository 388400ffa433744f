"""Rule encode: an edit's segments joined with the source audio, and the side-by-side video (stitch.encode)."""

import _repo  # noqa: F401  (puts the repo on sys.path)

from stitch.encode import run
from stitch.smk import setup

setup(snakemake)
i, o = snakemake.input, snakemake.output
run(i.segments, i.side_by_side, i.info, i.audio, o.video, o.side_by_side)
