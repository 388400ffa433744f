"""e4e inversion of aligned crops into W+ pivots."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from stitch.progress import tqdm

from stitch.models.e4e import Encoder4Editing


def crops_to_tensor(crops: np.ndarray) -> torch.Tensor:
    """(N, S, S, 3) uint8 -> (N, 3, S, S) float in [-1, 1]."""
    assert crops.ndim == 4 and crops.shape[-1] == 3 and crops.dtype == np.uint8, (crops.shape, crops.dtype)
    return torch.from_numpy(np.ascontiguousarray(crops)).permute(0, 3, 1, 2).float().div(127.5).sub(1.0)


def tensor_to_crops(images: torch.Tensor) -> np.ndarray:
    """(N, 3, S, S) float in about [-1, 1] -> (N, S, S, 3) uint8 (rounded, clipped)."""
    x = (images.detach().float().clamp(-1, 1) + 1) * 127.5
    return x.round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()


@torch.no_grad()
def invert_crops(
    encoder: Encoder4Editing, crops: np.ndarray, batch: int = 16, device: str | torch.device = "cpu", progress: bool = True
) -> np.ndarray:
    """Pivots (N, num_ws, w_dim) float32 for crops (N, S, S, 3) uint8; crops resized to the encoder input."""
    size = encoder.cfg.input_size
    out = []
    for i in tqdm(range(0, len(crops), batch), desc="invert", disable=not progress):
        x = crops_to_tensor(crops[i : i + batch]).to(device)
        if x.shape[-1] != size:
            x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
        out.append(encoder(x).float().cpu())
    ws = torch.cat(out).numpy() if out else np.zeros((0, encoder.cfg.num_ws, encoder.cfg.w_dim), np.float32)
    assert ws.shape[1:] == (encoder.cfg.num_ws, encoder.cfg.w_dim)
    return ws


def run(crops_npz, pack_dir, out_npy, device: str | torch.device = "cpu") -> None:
    """Stage ``invert``: pivots (F, T, num_ws, w_dim) for every valid crop (zeros elsewhere)."""
    from pathlib import Path

    from stitch.packs import Pack

    data = np.load(crops_npz)
    crops, valid = data["crops"], data["valid"]
    pack = Pack.open(pack_dir)
    enc = pack.encoder(device)
    pivots = np.zeros(valid.shape + (enc.cfg.num_ws, enc.cfg.w_dim), np.float32)
    for f in range(valid.shape[0]):
        pivots[f, valid[f]] = invert_crops(enc, crops[f][valid[f]], device=device)
    tmp = Path(out_npy).with_name(Path(out_npy).stem + ".tmp.npy")
    np.save(tmp, pivots)
    tmp.replace(out_npy)
