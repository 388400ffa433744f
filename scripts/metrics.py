"""Rule metrics: TL-ID/TG-ID, identity distance, probe deltas, reconstruction quality and seam columns from the
describe shards (stitch.metrics.run)."""

import _repo  # noqa: F401  (puts the repo on sys.path)

from stitch.metrics import run
from stitch.smk import setup

setup(snakemake)
i, wc = snakemake.input, snakemake.wildcards
run(i.source, i.describe, i.quads, snakemake.params.pack, snakemake.output.frames, snakemake.output.summary,
    meta={"video": wc.video, "method": wc.method, "edit": wc.edit}, calibration_json=i.get("calibration"))
