"""Pivotal tuning (PTI): tune one generator on all frames of a face track, pivots fixed.

Reference schedule (STIT): ``epochs`` passes over all frames, batch 1, one Adam step per frame,
loss = mse_weight * MSE + lpips_weight * LPIPS(alex), noise_mode const. Without LPIPS weights the perceptual
term is dropped (the caller logs that fallback).
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from tqdm import tqdm

from stitch.invert import crops_to_tensor
from stitch.models.stylegan2 import Generator

log = logging.getLogger(__name__)
Perceptual = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class PTIConfig:
    """STIT defaults: 300 epochs (80 in its examples), Adam lr 3e-5, betas (0.9, 0.999), 10*MSE + 1*LPIPS."""

    epochs: int = 300
    lr: float = 3e-5
    mse_weight: float = 10.0
    lpips_weight: float = 1.0
    seed: int = 0


def psnr(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per-image PSNR (dB) of images in [-1, 1]."""
    mse = (a.clamp(-1, 1) - b).square().flatten(1).mean(1)
    return 10 * torch.log10(4.0 / mse.clamp_min(1e-12))


@torch.no_grad()
def render(G: Generator, ws: np.ndarray | torch.Tensor, batch: int = 16, device: str | torch.device = "cpu") -> torch.Tensor:
    """G.synthesis over (N, num_ws, w_dim) latents in batches -> (N, 3, R, R) on CPU."""
    ws = torch.as_tensor(ws, dtype=torch.float32)
    outs = [G.synthesis(w.to(device), noise_mode="const").cpu() for w in ws.split(batch)]
    return torch.cat(outs) if outs else torch.zeros(0, 3, G.img_resolution, G.img_resolution)


def pti_tune(
    G: Generator,
    pivots: np.ndarray,
    crops: np.ndarray,
    cfg: PTIConfig,
    perceptual: Perceptual | None = None,
    device: str | torch.device = "cpu",
    progress: bool = True,
) -> tuple[Generator, dict]:
    """Return a tuned copy of ``G`` (``G`` itself is untouched) and PSNR before/after per frame."""
    assert pivots.ndim == 3 and pivots.shape[1:] == (G.num_ws, G.w_dim), pivots.shape
    assert crops.shape[0] == pivots.shape[0] and crops.shape[1] == G.img_resolution, (crops.shape, pivots.shape)
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    targets = crops_to_tensor(crops)
    ws = torch.as_tensor(pivots, dtype=torch.float32)
    before = psnr(render(G, ws, device=device), targets)
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
        "psnr_before": float(before.mean()) if n else None, "psnr_after": float(after.mean()) if n else None,
        "psnr_after_per_frame": after.tolist(),
    }
    log.info("PTI: %d frames x %d epochs, PSNR %.2f -> %.2f dB", n, cfg.epochs, stats["psnr_before"] or 0, stats["psnr_after"] or 0)
    return Gt.cpu(), stats


def run(crops_npz, pivots_npy, pack_dir, settings: dict, out_generators, out_stats, device="cpu") -> dict:
    """Stage ``pti``: one tuned generator per face track (bundle ``face<k>``) + PSNR stats JSON."""
    import json
    from pathlib import Path

    from stitch.models.native import save_bundle
    from stitch.packs import Pack

    data = np.load(crops_npz)
    crops, valid = data["crops"], data["valid"]
    pivots = np.load(pivots_npy)
    pack = Pack.open(pack_dir)
    G = pack.generator(device)
    perceptual = load_pack_lpips(pack, device) if settings.get("lpips_weight") else None
    cfg = PTIConfig(epochs=int(settings["epochs"]), lr=float(settings["lr"]), mse_weight=float(settings["mse_weight"]),
                    lpips_weight=float(settings["lpips_weight"]), seed=int(settings["seed"]))
    tuned, stats = {}, {"settings": settings, "faces": {}}
    for f in range(valid.shape[0]):
        Gt, st = pti_tune(G, pivots[f][valid[f]], crops[f][valid[f]], cfg, perceptual=perceptual, device=device)
        tuned[f"face{f}"] = Gt
        stats["faces"][f"face{f}"] = st
    save_bundle(tuned, out_generators)
    Path(out_stats).write_text(json.dumps(stats, indent=2))
    return stats


def load_pack_lpips(pack, device="cpu") -> Perceptual | None:
    """LPIPS(alex) from the pack when it ships the weights; otherwise None (MSE-only PTI, logged)."""
    if not (pack.has("lpips_backbone") and pack.has("lpips_heads")):
        log.warning("pack %s has no LPIPS weights: PTI uses the MSE term only (fallback)", pack.name)
        return None
    from stitch.models.lpips import load_lpips

    net = load_lpips(pack.path("lpips_backbone"), pack.path("lpips_heads"), net="alex", device=device)
    return lambda a, b: net(a, b)
