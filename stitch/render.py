"""Rendering face tracks and the crop files every face-producing stage writes (``crops``, ``valid``, ``stats``)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np

from stitch.invert import tensor_to_crops
from stitch.models.stylegan2 import Generator
from stitch.pti import render


def save_crops(out_npz, crops: np.ndarray, valid: np.ndarray, stats) -> None:
    """Write (F, T, R, R, 3) uint8 crops + (F, T) valid + JSON stats atomically."""
    assert crops.ndim == 5 and crops.shape[:2] == valid.shape and crops.dtype == np.uint8, (crops.shape, valid.shape)
    tmp = Path(out_npz).with_name(Path(out_npz).stem + ".tmp.npz")
    np.savez(tmp, crops=crops, valid=valid, stats=np.asarray(json.dumps(stats)))
    tmp.replace(out_npz)


def render_tracks(generator_for: Callable[[int], Generator], latents: np.ndarray, valid: np.ndarray, res: int,
                  device="cpu") -> np.ndarray:
    """(F, T, R, R, 3) uint8 crops: ``generator_for(f)`` rendered at ``latents[f, t]`` where ``valid[f, t]``."""
    assert latents.ndim == 4 and latents.shape[:2] == valid.shape, (latents.shape, valid.shape)
    out = np.zeros(valid.shape + (res, res, 3), np.uint8)
    for f in range(valid.shape[0]):
        if valid[f].any():
            out[f, valid[f]] = tensor_to_crops(render(generator_for(f), latents[f][valid[f]], device=device))
    return out
