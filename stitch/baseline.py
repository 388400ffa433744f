"""Stage ``baseline``: the simpler methods STIT is compared with, producing crops exactly like ``stitching``.

- ``e4e``: the pack's generator rendered at the (edited) e4e pivots; no tuning at all.
- ``no_stitch``: the video's PTI generator rendered at the edited pivots; no stitching tuning.
- ``pti_frame``: PTI run independently on every frame (same steps per frame as the joint PTI gives each frame),
  then that frame's generator rendered at its edited pivot. One job renders all edits, since the per-frame
  generators are too many to keep.

All methods share the upstream stages and are pasted back identically, so only the method differs.
"""

from __future__ import annotations

import logging

import numpy as np
from stitch.progress import tqdm

from stitch.pti import prepare, pti_tune
from stitch.latents import Latents
from stitch.stagefiles import Crops, FaceCrops
from stitch.tensors import render, render_tracks, tensor_to_crops
from stitch.work import sum_work, work

log = logging.getLogger(__name__)


def run(method: str, pack_dir, latents_npy, crops_npz, out_npz, generators=None, device="cpu", shard: int = 0,
        shard_frames: int | None = None) -> None:
    """Crops of one edit (or ``_recon`` when ``latents_npy`` holds the pivots) for ``e4e`` or ``no_stitch``, one
    shard (``crops_npz``: its crops; ``latents_npy``: the video's latents, a file or its shard files)."""
    from stitch.models.native import load_bundle
    from stitch.packs import Pack

    data = Crops.load(crops_npz)
    valid, res = data.valid, data.crops.shape[-2]
    latents = Latents.load_shard(latents_npy, shard, shard_frames, valid.shape[1]).latents
    if method == "e4e":
        G = Pack.open(pack_dir).generator(device)
        out = render_tracks(lambda f: G, latents, valid, res)
    elif method == "no_stitch":
        if generators is None:
            raise ValueError("baseline no_stitch needs the PTI generators")
        gens = load_bundle(generators, device)
        out = render_tracks(lambda f: gens[f"face{f}"], latents, valid, res)
    else:
        raise ValueError(f"baseline method must be e4e or no_stitch here, got {method!r}")
    FaceCrops(out, valid, {"method": method, "work": work(0, int(valid.sum()))}).save(out_npz)
    log.info("%s: rendered %d face crops", method, int(valid.sum()))


def run_pti_frame(pack_dir, pivots_npy, crops_npz, latents: dict[str, str], settings: dict, outputs: dict[str, str],
                  device="cpu", shard: int = 0, shard_frames: int | None = None) -> None:
    """Per-frame PTI of one shard: tune a fresh copy of the generator on each frame alone, render its pivot and
    every edit.

    ``latents`` maps edit name -> edited latents ``.npy``; ``outputs`` maps the same names plus ``_recon`` to
    the shard's crop files to write.
    """
    from stitch.packs import Pack

    assert set(outputs) == set(latents) | {"_recon"}, (sorted(outputs), sorted(latents))
    data = Crops.load(crops_npz)
    crops, valid = data.crops, data.valid
    n = valid.shape[1]
    pivots = Latents.load_shard(pivots_npy, shard, shard_frames, n).latents
    edits = {name: Latents.load_shard(path, shard, shard_frames, n).latents for name, path in latents.items()}
    pack = Pack.open(pack_dir)
    G, cfg, perceptual, space = prepare(pack, settings, device)
    out = {name: np.zeros_like(crops) for name in outputs}
    psnrs, works = [], []
    todo = [(f, t) for f in range(valid.shape[0]) for t in np.flatnonzero(valid[f])]
    for f, t in tqdm(todo, desc="pti per frame", mininterval=5):
        Gt, st = pti_tune(G, pivots[f, t : t + 1], crops[f, t : t + 1], cfg, perceptual=perceptual, device=device,
                          progress=False, space=space)
        psnrs.append(st["psnr_after"])
        works.append(st["work"])
        out["_recon"][f, t] = tensor_to_crops(render(Gt, pivots[f, t : t + 1], device=device))[0]
        for name, w in edits.items():
            out[name][f, t] = tensor_to_crops(render(Gt, w[f, t : t + 1], device=device))[0]
    renders = len(todo) * (1 + len(edits))  # each frame's generator renders its pivot and every edit
    stats = {"method": "pti_frame", "steps_per_frame": cfg.epochs,
             "psnr_after_mean": float(np.mean(psnrs)) if psnrs else None,
             "work": sum_work([*works, work(0, renders, shared_by_edits=True)])}
    for name, path in outputs.items():
        FaceCrops(out[name], valid, stats).save(path)
    log.info("pti_frame: %d frames tuned independently, mean PSNR %.2f dB", len(todo), stats["psnr_after_mean"] or 0)
