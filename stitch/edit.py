"""Latent editing: w_edit = pivot + sum_k (factor_k / 2) * direction_k, one row per W+ layer."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch

from stitch.errors import StitchError

# STIT's typical factors for its directions (age +-8, gender -6, smile -3 / +2): the demo pack's directions are scaled
# to them and PTI's edit-preserving regulariser samples edits up to these strengths.
TYPICAL_FACTOR = {"age": 8.0, "gender": 6.0, "smile": 3.0}


def combined_direction(directions: Mapping[str, torch.Tensor], factors: Mapping[str, float]) -> torch.Tensor:
    """Sum of (factor / 2) * direction over the named directions -> (num_ws, w_dim)."""
    if not factors:
        raise StitchError("an edit needs at least one direction with a factor")
    unknown = sorted(set(factors) - set(directions))
    if unknown:
        raise StitchError(f"unknown edit direction(s) {unknown}; this pack has {sorted(directions)}")
    total = None
    for name, factor in factors.items():
        term = directions[name].float() * (float(factor) / 2.0)
        total = term if total is None else total + term
    return total


def apply_edit(pivots: np.ndarray, directions: Mapping[str, torch.Tensor], factors: Mapping[str, float]) -> np.ndarray:
    """Edited latents for pivots of shape (..., num_ws, w_dim); pivots themselves are never changed."""
    d = combined_direction(directions, factors).numpy().astype(pivots.dtype)
    assert pivots.shape[-2:] == d.shape, f"pivots {pivots.shape} vs direction {d.shape}"
    return pivots + d


def run(pivots_npy, pack_dir, factors: dict, out_npy) -> None:
    """Stage ``edit``: edited latents (same shape as the pivots) for one named edit."""
    from pathlib import Path

    from stitch.packs import Pack

    pivots = np.load(pivots_npy)
    edited = apply_edit(pivots, Pack.open(pack_dir).directions, factors)
    tmp = Path(out_npy).with_name(Path(out_npy).stem + ".tmp.npy")
    np.save(tmp, edited)
    tmp.replace(out_npy)
