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


#: images per batch at 256 px (synthesis, encoder); :func:`batch_for` scales it by the pixels of other resolutions
BATCH_AT_256 = 16


def batch_for(resolution: int) -> int:
    """Images per batch of a network run at ``resolution`` (synthesis, encoder): 16 up to 256 px, then as many as
    hold the same pixels (1 at 1024 px: a batch of 16 1024 px images keeps ~3 GB of activations)."""
    return max(1, min(BATCH_AT_256, BATCH_AT_256 * 256 * 256 // (resolution * resolution)))


@torch.no_grad()
def render(G: Generator, ws: np.ndarray | torch.Tensor, batch: int | None = None,
           device: str | torch.device = "cpu") -> torch.Tensor:
    """G.synthesis over (N, num_ws, w_dim) latents in batches (default :func:`batch_for`) -> (N, 3, R, R) on
    CPU (float: 12 MB per 1024 px image; :func:`render_crops` keeps uint8 only)."""
    ws = torch.as_tensor(ws, dtype=torch.float32)
    outs = [G.synthesis(w.to(device), noise_mode="const").cpu()
            for w in ws.split(batch or batch_for(G.img_resolution))]
    return torch.cat(outs) if outs else torch.zeros(0, 3, G.img_resolution, G.img_resolution)


def render_crops(G: Generator, ws: np.ndarray) -> np.ndarray:
    """(N, R, R, 3) uint8 crops of G at (N, num_ws, w_dim) latents, converted batch by batch: the float images of
    one batch at a time, never of all N. ``G`` is on its device."""
    res = G.img_resolution
    out = np.zeros((len(ws), res, res, 3), np.uint8)
    device = next(G.parameters()).device
    step = batch_for(res)
    for a in range(0, len(ws), step):
        out[a : a + step] = tensor_to_crops(render(G, ws[a : a + step], step, device))
    return out


def render_tracks(generator_for: Callable[[int], Generator], latents: np.ndarray, valid: np.ndarray,
                  res: int) -> np.ndarray:
    """(F, T, R, R, 3) uint8 crops: ``generator_for(f)`` (on its device) rendered at ``latents[f, t]`` where
    ``valid[f, t]``."""
    assert latents.ndim == 4 and latents.shape[:2] == valid.shape, (latents.shape, valid.shape)
    out = np.zeros(valid.shape + (res, res, 3), np.uint8)
    for f in range(valid.shape[0]):
        if valid[f].any():
            out[f, valid[f]] = render_crops(generator_for(f), latents[f][valid[f]])
    return out


def adam(params, lr: float, betas: tuple[float, float] = (0.9, 0.999)) -> torch.optim.Adam:
    """Adam over ``params`` with the fused kernel (one pass over all tensors: ~4x cheaper per update than the
    per-tensor loop for the demo generator's 66 tensors on CPU, same algorithm); the plain loop where the device has
    no fused kernel."""
    params = list(params)
    try:
        return torch.optim.Adam(params, lr=lr, betas=betas, fused=True)
    except (RuntimeError, ValueError):
        return torch.optim.Adam(params, lr=lr, betas=betas)
