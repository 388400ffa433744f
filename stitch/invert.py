"""e4e inversion of aligned crops into W+ pivots."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from stitch.progress import tqdm

from stitch.models.e4e import Encoder4Editing
from stitch.latents import Latents
from stitch.stagefiles import Crops
from stitch.tensors import batch_for, crops_to_tensor


@torch.no_grad()
def invert_crops(encoder: Encoder4Editing, crops: np.ndarray, batch: int | None = None,
                 device: str | torch.device = "cpu", progress: bool = True) -> np.ndarray:
    """Pivots (N, num_ws, w_dim) float32 for crops (N, S, S, 3) uint8; crops resized to the encoder input,
    ``batch`` at a time (default :func:`stitch.tensors.batch_for` its input size)."""
    size = encoder.cfg.input_size
    batch = batch or batch_for(size)
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
    from stitch.packs import Pack

    data = Crops.load(crops_npz)
    crops, valid = data.crops, data.valid
    pack = Pack.open(pack_dir)
    enc = pack.encoder(device)
    pivots = np.zeros(valid.shape + (enc.cfg.num_ws, enc.cfg.w_dim), np.float32)
    for f in range(valid.shape[0]):
        pivots[f, valid[f]] = invert_crops(enc, crops[f][valid[f]], device=device)
    Latents(pivots).save(out_npy)
