"""Rule metrics: TL-ID/TG-ID, identity distance, probe deltas, reconstruction quality (stitch.metrics.run)."""

import _repo  # noqa: F401  (puts the repo on sys.path)

from stitch.metrics import run
from stitch.smk import setup

device = setup(snakemake)
i, o, wc = snakemake.input, snakemake.output, snakemake.wildcards
run(i.source, i.video, i.crops, i.recon, i.quads, snakemake.params.pack, i.probe, o.frames, o.summary,
    meta={"video": wc.video, "method": wc.method, "edit": wc.edit}, device=device,
    seam={"video": i.source_video, "masks": i.masks, "feather": snakemake.params.feather},
    calibration_json=i.get("calibration"), detect_long_side=snakemake.params.detect_long_side)
