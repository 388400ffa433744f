"""Stage ``recon``: the PTI reconstruction, every valid face rendered by its tuned generator at its pivots (no
edit, no stitching). Paste and encode treat it as the pseudo-edit ``_recon`` of the methods that use the joint
PTI generators (``stit``, ``no_stitch``); the metrics compare it with the aligned crops."""

from __future__ import annotations

from stitch.latents import Latents
from stitch.stagefiles import Crops, FaceCrops
from stitch.tensors import render_tracks
from stitch.work import work


def run(generators, pivots_npy, crops_npz, out_npz, device="cpu", shard: int = 0,
        shard_frames: int | None = None) -> None:
    """PTI reconstructions (F, T, R, R, 3) of every valid face crop of one shard (``crops_npz``: its crops;
    ``pivots_npy``: the video's pivots, a file or its shard files)."""
    from stitch.models.native import load_bundle

    gens = load_bundle(generators, device)
    data = Crops.load(crops_npz)
    pivots = Latents.load_shard(pivots_npy, shard, shard_frames, data.valid.shape[1]).latents
    out = render_tracks(lambda f: gens[f"face{f}"], pivots, data.valid, data.crops.shape[-2])
    FaceCrops(out, data.valid, {"work": work(0, int(data.valid.sum()))}).save(out_npz)
