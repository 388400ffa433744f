"""Reconstruction quality at crop resolution (stage ``metrics``): a method's ``_recon`` crops against the aligned
crops on the valid faces, per frame.

* **PSNR** on uint8 images (``inf`` for identical images).
* **SSIM** (Wang et al. 2004) with an 11-tap Gaussian window, σ = 1.5, K1 = 0.01, K2 = 0.03, L = 255, computed
  per RGB channel on the "valid" part of the image (no padding) and averaged over channels and positions —
  the same numbers as scikit-image's ``structural_similarity(gaussian_weights=True, sigma=1.5,
  use_sample_covariance=False, channel_axis=-1, data_range=255)``.
* **LPIPS** (alex) when the pack ships its weights.
"""

from __future__ import annotations

import math

import numpy as np

from stitch.errors import StitchError
from stitch.stagefiles import Crops, FaceCrops, shard_paths, shards_name


def psnr(a: np.ndarray, b: np.ndarray, data_range: float = 255.0) -> float:
    """Peak signal-to-noise ratio in dB of two same-shape images (``inf`` when identical)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.shape != b.shape:
        raise StitchError(f"psnr: shapes differ {a.shape} vs {b.shape}")
    mse = float(np.mean((a - b) ** 2))
    return math.inf if mse == 0 else 10.0 * math.log10(data_range ** 2 / mse)


def gaussian_window(size: int = 11, sigma: float = 1.5) -> np.ndarray:
    """Normalised 1-D Gaussian taps (the 2-D window is their outer product)."""
    x = np.arange(size, dtype=np.float64) - (size - 1) / 2
    g = np.exp(-(x ** 2) / (2 * sigma ** 2))
    return g / g.sum()


def _filter_valid(x: np.ndarray, g: np.ndarray) -> np.ndarray:
    """Separable 'valid' filtering of (..., H, W) with the 1-D taps g along H and W."""
    from numpy.lib.stride_tricks import sliding_window_view

    x = sliding_window_view(x, len(g), axis=-1) @ g
    x = sliding_window_view(x, len(g), axis=-2) @ g
    return x


def ssim(a: np.ndarray, b: np.ndarray, data_range: float = 255.0, size: int = 11, sigma: float = 1.5,
         k1: float = 0.01, k2: float = 0.03) -> float:
    """Mean SSIM of two (H, W) or (H, W, C) images; colour images per channel, averaged (see module doc).

    Images smaller than the window are filtered with a window cut to the image size.
    """
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.shape != b.shape:
        raise StitchError(f"ssim: shapes differ {a.shape} vs {b.shape}")
    if a.ndim == 2:
        a, b = a[..., None], b[..., None]
    a, b = np.moveaxis(a, -1, 0), np.moveaxis(b, -1, 0)  # (C, H, W)
    size = min(size, a.shape[-1], a.shape[-2])
    size -= 1 - size % 2  # odd
    g = gaussian_window(size, sigma)
    c1, c2 = (k1 * data_range) ** 2, (k2 * data_range) ** 2
    mu_a, mu_b = _filter_valid(a, g), _filter_valid(b, g)
    s_aa = _filter_valid(a * a, g) - mu_a ** 2
    s_bb = _filter_valid(b * b, g) - mu_b ** 2
    s_ab = _filter_valid(a * b, g) - mu_a * mu_b
    num = (2 * mu_a * mu_b + c1) * (2 * s_ab + c2)
    den = (mu_a ** 2 + mu_b ** 2 + c1) * (s_aa + s_bb + c2)
    return float(np.mean(num / den))


def crop_quality(crops: np.ndarray, recon: np.ndarray, valid: np.ndarray, lpips_net=None) -> dict[str, np.ndarray]:
    """Per-frame reconstruction quality of (F, T, R, R, 3) crops: mean over the valid faces of each frame.

    Returns {"psnr": (T,), "ssim": (T,)} (+ "lpips" when ``lpips_net`` is given); NaN where no face is valid.
    Frames whose crops are identical have PSNR ``inf``.
    """
    assert crops.shape == recon.shape and crops.shape[:2] == valid.shape, (crops.shape, recon.shape, valid.shape)
    F, T = valid.shape
    vals = {k: np.full((F, T), np.nan) for k in ("psnr", "ssim")}
    for f, t in zip(*np.nonzero(valid)):
        vals["psnr"][f, t] = psnr(crops[f, t], recon[f, t])
        vals["ssim"][f, t] = ssim(crops[f, t], recon[f, t])
    if lpips_net is not None and valid.any():
        vals["lpips"] = np.full((F, T), np.nan)
        vals["lpips"][valid] = lpips_distances(lpips_net, crops[valid], recon[valid])
    out = {}
    for k, v in vals.items():  # mean over the valid faces of each frame (inf stays inf), NaN where none
        n = (~np.isnan(v)).sum(0)
        with np.errstate(invalid="ignore"):
            out[k] = np.where(n > 0, np.where(np.isnan(v), 0, v).sum(0) / np.maximum(n, 1), np.nan)
    return out


def shards_quality(crops_npz, recon_npz, lpips_net=None) -> dict[str, np.ndarray]:
    """:func:`crop_quality` of the aligned crops against a method's reconstruction, shard by shard (lists of shard
    files in frame order, or one file each): per-frame values joined, one shard's crops in memory."""
    crops_npz = shard_paths(crops_npz)
    recon_npz = shard_paths(recon_npz)
    if len(crops_npz) != len(recon_npz):
        raise StitchError(f"{shards_name(recon_npz)}: {len(recon_npz)} shards, the crops have {len(crops_npz)}")
    parts = []
    for crops_path, recon_path in zip(crops_npz, recon_npz):
        crops, recon = Crops.load(crops_path), FaceCrops.load(recon_path)
        if not np.array_equal(crops.valid, recon.valid):
            raise StitchError(f"{recon_path}: valid faces differ from {crops_path}")
        parts.append(crop_quality(crops.crops, recon.crops, crops.valid, lpips_net))
    keys = [k for k in ("psnr", "ssim", "lpips") if any(k in p for p in parts)]  # lpips: only where a face is valid
    return {k: np.concatenate([p.get(k, np.full(len(p["psnr"]), np.nan)) for p in parts]) for k in keys}


def lpips_distances(net, a: np.ndarray, b: np.ndarray, batch: int = 64) -> np.ndarray:
    """LPIPS of (N, R, R, 3) uint8 image pairs (upsampled to ≥ 64 px so AlexNet's strides fit)."""
    import torch
    import torch.nn.functional as Fn

    p = next(net.parameters())
    out = []
    with torch.no_grad():
        for i in range(0, len(a), batch):
            x, y = (torch.from_numpy(np.ascontiguousarray(v[i : i + batch])).permute(0, 3, 1, 2).to(p) / 127.5 - 1
                    for v in (a, b))
            if x.shape[-1] < 64:
                x, y = (Fn.interpolate(v, size=(64, 64), mode="bilinear", align_corners=False) for v in (x, y))
            out.append(net(x, y).double().cpu().numpy())
    return np.concatenate(out)


# --------------------------------------------------------------------------------------------- the stage
