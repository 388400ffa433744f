"""Shared test fixtures.

``shared_data``: the real data in ``../shared/data``. Tests that need it skip with a clear reason when it is
absent, except under ``CI=true`` where its absence is a failure (CI always has it). ``G``: a random 32 px
generator (one per test module) for the tuning tests; :func:`pivot_frames` gives it frames to tune on.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("STITCH_SHARED_DATA", REPO.parent / "shared" / "data"))

torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))


def _require_shared() -> Path:
    if SHARED_DATA.is_dir():
        return SHARED_DATA
    msg = f"real test data not found at {SHARED_DATA} (set STITCH_SHARED_DATA or place ../shared/data)"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail("CI=true but " + msg)
    pytest.skip(msg)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Path to ``../shared/data``; skips (or fails under CI=true) when absent."""
    return _require_shared()


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO


@pytest.fixture(scope="module")
def G(tmp_path_factory):
    """A random 32 px generator (``stitch.packs.make_random_pack``), one per test module."""
    from stitch.packs import make_random_pack

    return make_random_pack(tmp_path_factory.mktemp("pack"), resolution=32).generator()


def pivot_frames(G, n: int, seed: int = 0):
    """``n`` random pivots (N, ws, w_dim) and the crops ``G`` renders a little away from them (N, R, R, 3) uint8."""
    from stitch.tensors import render, tensor_to_crops

    ws = torch.randn(n, G.num_ws, G.w_dim, generator=torch.Generator().manual_seed(seed)).numpy() * 0.5
    return ws, tensor_to_crops(render(G, ws + 0.3))
