"""Crops <-> generator tensors, and rendering latents to crops: shared by invert, pti, stitching, recon and
the baselines (no stage imports another stage for these)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
import torch

if TYPE_CHECKING:
    from stitch.models.stylegan2 import Generator


def crops_to_tensor(crops: np.ndarray) -> torch.Tensor:
    """(N, S, S, 3) uint8 -> (N, 3, S, S) float in [-1, 1]."""
    assert crops.ndim == 4 and crops.shape[-1] == 3 and crops.dtype == np.uint8, (crops.shape, crops.dtype)
    return torch.from_numpy(np.ascontiguousarray(crops)).permute(0, 3, 1, 2).float().div(127.5).sub(1.0)


def tensor_to_crops(images: torch.Tensor) -> np.ndarray:
    """(N, 3, S, S) float in about [-1, 1] -> (N, S, S, 3) uint8 (rounded, clipped)."""
    x = (images.detach().float().clamp(-1, 1) + 1) * 127.5
    return x.round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()


@torch.no_grad()
def render(G: Generator, ws: np.ndarray | torch.Tensor, batch: int = 16,
           device: str | torch.device = "cpu") -> torch.Tensor:
    """G.synthesis over (N, num_ws, w_dim) latents in batches -> (N, 3, R, R) on CPU."""
    ws = torch.as_tensor(ws, dtype=torch.float32)
    outs = [G.synthesis(w.to(device), noise_mode="const").cpu() for w in ws.split(batch)]
    return torch.cat(outs) if outs else torch.zeros(0, 3, G.img_resolution, G.img_resolution)


def render_tracks(generator_for: Callable[[int], Generator], latents: np.ndarray, valid: np.ndarray, res: int,
                  device="cpu") -> np.ndarray:
    """(F, T, R, R, 3) uint8 crops: ``generator_for(f)`` rendered at ``latents[f, t]`` where ``valid[f, t]``."""
    assert latents.ndim == 4 and latents.shape[:2] == valid.shape, (latents.shape, valid.shape)
    out = np.zeros(valid.shape + (res, res, 3), np.uint8)
    for f in range(valid.shape[0]):
        if valid[f].any():
            out[f, valid[f]] = tensor_to_crops(render(generator_for(f), latents[f][valid[f]], device=device))
    return out
