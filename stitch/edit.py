"""Latent editing: w_edit = pivot + e(t) * sum_k (factor_k / 2) * direction_k, one row per W+ layer.

e(t) is the edit's time envelope (:mod:`stitch.edit_range`): 1 on every frame unless the edit has a time range.
The stage writes it per frame next to the latents (``edit/{edit}.json``): frames where it is 0 keep the source
pixels in the paste stage and skip stitching.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch

from stitch.edit_range import frame_envelope
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


def apply_edit(pivots: np.ndarray, directions: Mapping[str, torch.Tensor], factors: Mapping[str, float],
               weights: np.ndarray | None = None) -> np.ndarray:
    """Edited latents for pivots of shape (..., T, num_ws, w_dim); pivots themselves are never changed.
    ``weights`` (T,): per-frame strength of the edit (the envelope; None = 1 everywhere)."""
    d = combined_direction(directions, factors).numpy().astype(pivots.dtype)
    assert pivots.shape[-2:] == d.shape, f"pivots {pivots.shape} vs direction {d.shape}"
    if weights is None:
        return pivots + d
    w = np.asarray(weights, pivots.dtype)
    assert pivots.ndim >= 3 and w.shape == pivots.shape[-3:-2], f"weights {w.shape} vs pivots {pivots.shape}"
    return pivots + w[:, None, None] * d


def run(pivots_npy, pack_dir, factors: dict, out_npy, info_json, time_range: dict | None = None,
        envelope_json=None, name: str = "edit", calibration_json=None, multiplier: float = 1.0) -> None:
    """Stage ``edit``: edited latents (same shape as the pivots; ``pivots_npy``: the invert shards, read one at a
    time) for one named edit and (``envelope_json``) its per-frame envelope; ``time_range``: the normalised range
    (:func:`stitch.edit_range.check_range`) or None (every frame). ``factors``: the raw factors; an edit with
    targets adds the calibrated factors of ``calibration_json`` (rule calibrate) times ``multiplier`` (a strength
    sweep; :func:`stitch.targets.final_factors`)."""
    import logging

    from stitch.atomic import write_json
    from stitch.packs import Pack
    from stitch.latents import Latents, shard_lengths
    from stitch.stagefiles import shard_paths, shards_name
    from stitch.targets import final_factors

    factors = final_factors(factors, calibration_json, multiplier)

    info = json.loads(Path(info_json).read_text())
    fps = info["fps_num"] / info["fps_den"]
    env = frame_envelope(time_range, info["num_frames"], fps, f"edit {name} on {info['path']}")
    shards = shard_paths(pivots_npy)
    lengths = shard_lengths(shards)
    if sum(lengths) != len(env):
        raise StitchError(f"{shards_name(shards)}: {sum(lengths)} frames but {info_json} has {len(env)}; rerun frames")
    directions = Pack.open(pack_dir).directions
    n_faces, _, num_ws, w_dim = np.load(shards[0], mmap_mode="r").shape

    def edited():  # face by face, shard by shard: the file's order, one shard in memory
        for f in range(n_faces):
            for path, start in zip(shards, np.cumsum([0, *lengths[:-1]])):
                pivots = Latents.load(path).latents[f : f + 1]
                weights = None if time_range is None else env[start : start + pivots.shape[1]]
                yield apply_edit(pivots, directions, factors, weights)

    Latents.save_chunks(out_npy, (n_faces, len(env), num_ws, w_dim), edited())
    if envelope_json is not None:
        write_json(envelope_json, {"edit": name, "factors": dict(factors), "calibrated": calibration_json is not None,
                                   "range": time_range,
                                   "fps": fps, "envelope": [float(e) for e in env]})
    logging.getLogger(__name__).info("edit %s: %d of %d frames active (range %s)", name, int((env > 0).sum()),
                                     len(env), time_range)
