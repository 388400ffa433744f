"""Pivotal tuning (PTI): tune one generator on all frames of a face track, pivots fixed.

Reference schedule (STIT): ``epochs`` passes over all frames, batch 1, one Adam step per frame,
loss = mse_weight * MSE + lpips_weight * LPIPS(alex), noise_mode const. Without LPIPS weights the perceptual
term is dropped (the caller logs that fallback).

Optional (``edit_reg_weight`` > 0, not in STIT; off by default): an edit-preserving regulariser in the spirit of
PTI's locality regulariser. Tuning on the pivots alone lets the generator stop responding to the edit directions
around them (measured with the demo pack on talk_1: the age edit moves the probe's age +18.5 years with the
untuned generator, +6.8 after PTI). Each step also draws one of the pack's directions ``d`` and a strength
``t ~ U(-T, T)`` (``T`` its typical factor) and penalises
``MSE((G_t(w + t/2 d) - G_t(w)) - (G_0(w + t/2 d) - G_0(w)))``: the tuned generator ``G_t`` must change the
image under an edit as the pack's generator ``G_0`` does, while its reconstruction of the pivot is free to fit
the frame.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable, Mapping

import numpy as np
import torch
from stitch.progress import tqdm

from stitch.configs import PTIConfig
from stitch.edit import TYPICAL_FACTOR
from stitch.models.stylegan2 import Generator
from stitch.tensors import crops_to_tensor, render
from stitch.work import sum_work, work

log = logging.getLogger(__name__)
Perceptual = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


EditSpace = Mapping[str, tuple[torch.Tensor, float]]  # name -> ((num_ws, w_dim) direction, typical factor)


def edit_space(directions: Mapping[str, torch.Tensor]) -> dict[str, tuple[torch.Tensor, float]]:
    """The pack directions that have a typical factor (``stitch.edit.TYPICAL_FACTOR``), for the edit regulariser."""
    return {k: (directions[k].float(), TYPICAL_FACTOR[k]) for k in sorted(directions) if k in TYPICAL_FACTOR}


def edit_response_loss(
    Gt: Generator, G0: Generator, w: torch.Tensor, y: torch.Tensor, y0: torch.Tensor, space: EditSpace,
    rng: np.random.Generator,
) -> torch.Tensor:
    """MSE between the tuned and the original generator's image change under one random edit of ``w`` (1, L, C).

    ``y`` / ``y0`` are ``Gt``'s / ``G0``'s images of ``w`` (computed by the caller; gradients flow through ``y``).
    """
    names = list(space)
    d, limit = space[names[rng.integers(len(names))]]
    w_edit = w + float(rng.uniform(-limit, limit)) / 2 * d.to(w.device)[None]
    with torch.no_grad():
        ref = G0.synthesis(w_edit, noise_mode="const") - y0
    return ((Gt.synthesis(w_edit, noise_mode="const") - y) - ref).square().mean()


def psnr(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per-image PSNR (dB) of images in [-1, 1]."""
    mse = (a.clamp(-1, 1) - b).square().flatten(1).mean(1)
    return 10 * torch.log10(4.0 / mse.clamp_min(1e-12))


def pti_tune(
    G: Generator,
    pivots: np.ndarray,
    crops: np.ndarray,
    cfg: PTIConfig,
    perceptual: Perceptual | None = None,
    device: str | torch.device = "cpu",
    progress: bool = True,
    space: EditSpace | None = None,
) -> tuple[Generator, dict]:
    """Return a tuned copy of ``G`` (``G`` itself is untouched) and PSNR before/after per frame.

    ``space``: directions for the edit-preserving regulariser (used when ``cfg.edit_reg_weight`` > 0).
    """
    regularise = cfg.edit_reg_weight > 0
    if regularise and not space:
        raise ValueError("PTI edit_reg_weight > 0 needs edit directions with a typical factor (age, gender, smile)")
    assert pivots.ndim == 3 and pivots.shape[1:] == (G.num_ws, G.w_dim), pivots.shape
    assert crops.shape[0] == pivots.shape[0] and crops.shape[1] == G.img_resolution, (crops.shape, pivots.shape)
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    targets = crops_to_tensor(crops)
    ws = torch.as_tensor(pivots, dtype=torch.float32)
    before = psnr(render(G, ws, device=device), targets)
    G0, y0 = None, None
    if regularise:  # the untuned generator and its image of every pivot, fixed during tuning
        G0 = copy.deepcopy(G).to(device).eval().requires_grad_(False)
        with torch.no_grad():
            y0 = [G0.synthesis(ws[i : i + 1].to(device), noise_mode="const") for i in range(len(ws))]
    Gt = copy.deepcopy(G).to(device).train().requires_grad_(True)
    Gt.mapping.requires_grad_(False)
    opt = torch.optim.Adam([p for p in Gt.synthesis.parameters() if p.requires_grad], lr=cfg.lr, betas=(0.9, 0.999))
    n = len(ws)
    bar = tqdm(total=cfg.epochs * n, desc="pti", disable=not progress)
    for epoch in range(cfg.epochs):
        for i in rng.permutation(n):
            x = targets[i : i + 1].to(device)
            y = Gt.synthesis(ws[i : i + 1].to(device), noise_mode="const")
            loss = cfg.mse_weight * (y - x).square().mean()
            if perceptual is not None and cfg.lpips_weight:
                loss = loss + cfg.lpips_weight * perceptual(y, x).mean()
            if regularise:
                reg = edit_response_loss(Gt, G0, ws[i : i + 1].to(device), y, y0[i], space, rng)
                loss = loss + cfg.edit_reg_weight * reg
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            bar.update(1)
        bar.set_postfix(epoch=epoch + 1, loss=f"{loss.item():.4f}")
    bar.close()
    Gt.eval().requires_grad_(False)
    after = psnr(render(Gt, ws, device=device), targets)
    stats = {
        "frames": n, "epochs": cfg.epochs, "steps": cfg.epochs * n, "lpips": perceptual is not None,
        # every iteration tunes on the pivot (+ on the edited pivot, against G0's forward, when regularising);
        # forwards: the before / after renders and G0's images of the pivots
        "work": work(cfg.epochs * n * (2 if regularise else 1),
                     2 * n + ((1 + cfg.epochs) * n if regularise else 0), shared_by_edits=True),
        "edit_reg_weight": cfg.edit_reg_weight,
        "psnr_before": float(before.mean()) if n else None, "psnr_after": float(after.mean()) if n else None,
        "psnr_after_per_frame": after.tolist(),
    }
    log.info("PTI: %d frames x %d epochs, PSNR %.2f -> %.2f dB", n, cfg.epochs, stats["psnr_before"] or 0, stats["psnr_after"] or 0)
    return Gt.cpu(), stats


def run(crops_npz, pivots_npy, pack_dir, settings: dict, out_generators, out_stats, device="cpu") -> dict:
    """Stage ``pti``: one tuned generator per face track (bundle ``face<k>``) + PSNR stats JSON."""
    from stitch.atomic import write_json
    from stitch.models.native import save_bundle
    from stitch.packs import Pack
    from stitch.stagefiles import Crops, Latents

    data = Crops.load(crops_npz)
    crops, valid = data.crops, data.valid
    pivots = Latents.load(pivots_npy).latents
    pack = Pack.open(pack_dir)
    G, cfg, perceptual, space = prepare(pack, settings, device)
    tuned, stats = {}, {"settings": settings, "faces": {}}
    for f in range(valid.shape[0]):
        Gt, st = pti_tune(G, pivots[f][valid[f]], crops[f][valid[f]], cfg, perceptual=perceptual, device=device,
                          space=space)
        tuned[f"face{f}"] = Gt
        stats["faces"][f"face{f}"] = st
    stats["work"] = sum_work(st["work"] for st in stats["faces"].values())
    save_bundle(tuned, out_generators)
    write_json(out_stats, stats)
    return stats


def prepare(pack, settings: Mapping, device="cpu") -> tuple[Generator, PTIConfig, Perceptual | None, EditSpace | None]:
    """What :func:`pti_tune` needs from a pack and the workflow's ``pti`` settings: the generator, the config, LPIPS
    (when weighted and shipped) and the edit space (when the edit regulariser is on)."""
    cfg = PTIConfig.from_settings(settings)
    perceptual = load_pack_lpips(pack, device) if cfg.lpips_weight else None
    space = edit_space(pack.directions) if cfg.edit_reg_weight > 0 else None
    return pack.generator(device), cfg, perceptual, space


def load_pack_lpips(pack, device="cpu") -> Perceptual | None:
    """LPIPS(alex) from the pack when it ships the weights; otherwise None (MSE-only PTI, logged)."""
    net = pack.lpips(device)
    if net is None:
        log.warning("pack %s has no LPIPS weights: PTI uses the MSE term only (fallback)", pack.name)
        return None
    return lambda a, b: net(a, b)
