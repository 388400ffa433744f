"""A video's frames cut into shards of ``shard_frames`` frames (issue #12): one Snakemake job per shard for the
per-frame stages (crop, masks, invert, stitching, recon, the baselines, paste). Pure arithmetic, no I/O."""

from __future__ import annotations

import numpy as np


def num_shards(num_frames: int, shard_frames: int) -> int:
    """How many shards ``num_frames`` frames make (at least one)."""
    return max(1, -(-int(num_frames) // int(shard_frames)))


def shard_range(shard: int, num_frames: int, shard_frames: int | None) -> tuple[int, int]:
    """Frames ``[start, stop)`` of shard ``shard`` (``shard_frames`` None: one shard, the whole video)."""
    shard_frames = shard_frames or max(int(num_frames), 1)
    start = shard * shard_frames
    if not 0 <= start < max(num_frames, 1):
        raise ValueError(f"shard {shard} is outside a video of {num_frames} frames in shards of {shard_frames}")
    return start, min(start + shard_frames, num_frames)


def shard_name(shard: int) -> str:
    """The ``{shard}`` wildcard value of shard ``shard`` (zero-padded so that names sort in frame order)."""
    return f"{shard:04d}"


def shard_of(array: np.ndarray, shard: int, shard_frames: int | None, count: int, where) -> np.ndarray:
    """Frames of shard ``shard`` along axis 1 (the frame axis of (face, frame, ...) stage arrays), checked against
    ``count``, the frames the job's other shard input has (a mismatch is one-line ``StitchError``)."""
    from stitch.errors import StitchError

    start, stop = shard_range(shard, array.shape[1], shard_frames)
    if stop - start != count:
        raise StitchError(f"{where}: shard {shard} has {stop - start} of its {array.shape[1]} frames, the shard's "
                          f"crops have {count}; rerun the stages before it")
    return array[:, start:stop]
