"""Latent edit directions stored as ``.npy`` (STIT's ``editings/w_directions/*.npy``: (18, 512) float64)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from stitch.errors import StitchError


def load_direction(path: str | Path, num_ws: int | None = None) -> torch.Tensor:
    """Load one W / W+ direction as a float32 ``(num_ws, w_dim)`` tensor.

    Accepted array shapes: ``(w_dim,)`` and ``(1, w_dim)`` (one W direction, broadcast to every layer) or
    ``(k, w_dim)`` (per-layer W+ direction). With ``num_ws`` given, single-row directions are broadcast to
    ``num_ws`` rows and a per-layer direction must have exactly ``num_ws`` rows; without it the rows found
    in the file are returned (a ``(w_dim,)`` vector becomes ``(1, w_dim)``).
    """
    path = Path(path)
    if not path.is_file():
        raise StitchError(f"{path}: direction file not found")
    try:
        arr = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as e:
        msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise StitchError(f"{path}: not a readable numeric .npy direction ({msg})") from None
    if not isinstance(arr, np.ndarray) or arr.dtype.kind not in "fiu":
        raise StitchError(f"{path}: direction must be a numeric array, got dtype {getattr(arr, 'dtype', '?')}")
    if arr.ndim == 1:
        arr = arr[None]
    if arr.ndim != 2 or arr.shape[1] == 0 or arr.shape[0] == 0:
        raise StitchError(
            f"{path}: direction has shape {tuple(np.shape(arr))}; expected (w_dim,), (1, w_dim) or (num_ws, w_dim)"
        )
    if not np.isfinite(arr).all():
        raise StitchError(f"{path}: direction contains NaN or infinite values")
    t = torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float32))
    if num_ws is not None:
        if t.shape[0] == 1:
            t = t.expand(num_ws, -1).clone()
        elif t.shape[0] != num_ws:
            raise StitchError(
                f"{path}: direction has {t.shape[0]} layers but the generator has num_ws={num_ws} "
                f"(expected ({num_ws}, {t.shape[1]}), (1, {t.shape[1]}) or ({t.shape[1]},))"
            )
    return t
