"""Rule metrics: TL-ID/TG-ID, identity distance, probe deltas, reconstruction quality (stitch.metrics.run)."""

import _repo  # noqa: F401  (puts the repo on sys.path)

from stitch.metrics import run
from stitch.smk import setup

device = setup(snakemake)
i, o, wc = snakemake.input, snakemake.output, snakemake.wildcards
run(i.source, i.video, i.crops, i.recon, i.quads, snakemake.params.pack, o.frames, o.summary,
    meta={"video": wc.video, "method": wc.method, "edit": wc.edit}, device=device)
