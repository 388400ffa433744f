"""Rule preview_video: contact sheet of every edit on a few keyframes, e4e only (stitch.preview)."""

import _repo  # noqa: F401  (puts the repo on sys.path)

from stitch.preview import run
from stitch.smk import setup_torch

device = setup_torch(snakemake, video_frames=True)  # decodes the video's frames
i, o, p = snakemake.input, snakemake.output, snakemake.params
run(i.video, i.info, i.tracks, i.quads, p.pack, p.edits, o.sheet, o.layout, keyframes=p.keyframes, feather=p.feather,
    mode=p.mode, device=device, targets=p.targets, sweeps=p.sweeps, probe_path=i.probe, calibrate=p.calibrate)
