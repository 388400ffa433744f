"""Shared test fixtures.

``shared_data``: the real data in ``../shared/data``. Tests that need it skip with a clear reason when it is
absent, except under ``CI=true`` where its absence is a failure (CI always has it).
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
