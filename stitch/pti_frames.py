"""PTI's training frames of one face track, read shard by shard from disk with a bounded cache (issue #12).

PTI tunes on every valid frame of a track (``reference``) or on a bounded set of keyframes (``fast``). Holding a
whole video's crops as float targets grows with its length (1,800 frames at 1024 px: 22 GB), so
:class:`TrackFrames` keeps only two *blocks* of ``block`` consecutive frames in memory (uint8 crops, converted per
batch; a block is read from the one or two shard files it spans and the rest of those shards dropped), plus the
frames it is asked to :meth:`~TrackFrames.hold` (the keyframes: bounded by the schedule). A block is at most
``BLOCK_FRAMES`` frames and ``BLOCK_BYTES`` of crops (:func:`block_frames`: 85 frames at 1024 px), so what PTI holds
depends neither on the video's length nor on ``shard_frames``. A track of more than ``block`` frames is visited
block by block in each epoch (blocks in random order, frames at random within a block: :func:`epoch_order`), so
each block is read about once per epoch; a track of at most ``block`` frames keeps PTI's plain random order, and
with it the results PTI gave before shards existed. The order and the batches depend on the blocks only, never on
``shard_frames``: the same video tunes to the same generator in shards of any size.

Frames are numbered 0 .. n-1 in video order over the track's valid frames (the order PTI always used).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator, Sequence

import numpy as np
import torch

from stitch.latents import Latents
from stitch.stagefiles import Crops, read_npz, shard_paths
from stitch.tensors import crops_to_tensor

#: Frames per block at most (see the module doc): 256 frames are 3 MB of demo-pack crops + 5 MB of pivots.
BLOCK_FRAMES = 256
#: Bytes of uint8 crops per block at most: at 1024 px (3 MB a crop) a block is 85 frames; up to 512 px
#: BLOCK_FRAMES rules.
BLOCK_BYTES = 256 * 2**20


def block_frames(resolution: int) -> int:
    """Frames per block for crops of ``resolution`` px: ``BLOCK_FRAMES``, fewer where they pass ``BLOCK_BYTES``."""
    return max(1, min(BLOCK_FRAMES, BLOCK_BYTES // (3 * int(resolution) ** 2)))


class TrackFrames:
    """Pivots and target crops of face ``face``'s valid frames in the shard files ``crops`` / ``pivots`` (lists in
    frame order; a single file is one shard)."""

    def __init__(self, crops: Sequence, pivots: Sequence, face: int, block: int = BLOCK_FRAMES):
        self.crop_files, self.pivot_files = shard_paths(crops), shard_paths(pivots)
        assert len(self.crop_files) == len(self.pivot_files), (len(self.crop_files), len(self.pivot_files))
        self.face, self.block = face, max(1, int(block))
        self.local, frame_index, offset = [], [], 0  # per shard: the valid frames' indices within its file
        for path in self.crop_files:
            valid = read_npz(path, ["valid"])["valid"][face]
            self.local.append(np.flatnonzero(valid))
            frame_index.append(offset + self.local[-1])
            offset += len(valid)
        self.frame_index = np.concatenate(frame_index).astype(np.int64)  # the video frame of each of the n frames
        sizes = [len(v) for v in self.local]
        self.starts = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        self.n = int(self.starts[-1])
        self.blocks = [np.arange(a, min(a + self.block, self.n)) for a in range(0, self.n, self.block)]
        self.cache_blocks = 2  # a batch may take the end of one block and the start of the next
        self._cache: OrderedDict[int, tuple[np.ndarray, np.ndarray]] = OrderedDict()
        self._held: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self.loads = 0  # shard reads (for the tests: each shard about once per epoch when streaming)

    def __len__(self) -> int:
        return self.n

    @property
    def fits(self) -> bool:
        """The whole track is one block (held in memory at once)."""
        return len(self.blocks) <= 1

    def shard_of(self, idx: np.ndarray) -> np.ndarray:
        """The shard of each of frames ``idx``."""
        return np.searchsorted(self.starts, idx, side="right") - 1

    def _block(self, b: int) -> tuple[np.ndarray, np.ndarray]:
        """(pivots, crops uint8) of block ``b``'s frames, read from the shards it spans, through the LRU cache."""
        if b in self._cache:
            self._cache.move_to_end(b)
            return self._cache[b]
        idx = self.blocks[b]
        shard = self.shard_of(idx)
        parts = [self._read(int(k), idx[shard == k] - self.starts[k]) for k in np.unique(shard)]
        self._cache[b] = tuple(np.concatenate(a) for a in zip(*parts))
        while len(self._cache) > self.cache_blocks:
            self._cache.popitem(last=False)
        return self._cache[b]

    def _read(self, k: int, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(pivots, crops) of the valid frames ``rows`` of shard ``k`` (a copy: the rest of the shard is dropped)."""
        frames = self.local[k][rows]
        self.loads += 1
        return (Latents.load(self.pivot_files[k]).latents[self.face][frames],
                Crops.load(self.crop_files[k]).crops[self.face][frames])

    def _frame(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        if i in self._held:
            return self._held[i]
        b = i // self.block
        pivots, crops = self._block(b)
        return pivots[i - b * self.block], crops[i - b * self.block]

    def hold(self, idx: np.ndarray) -> None:
        """Keep frames ``idx`` in memory from now on (the keyframes), when the track is more than one block."""
        if self.fits:
            return
        for i in sorted(int(i) for i in idx if int(i) not in self._held):
            w, c = self._frame(i)
            self._held[i] = (w.copy(), c.copy())

    def batch(self, idx: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """(pivots (B, ws, w_dim) float32, targets (B, 3, R, R) in [-1, 1]) of frames ``idx``."""
        pairs = [self._frame(int(i)) for i in idx]
        ws = torch.as_tensor(np.stack([w for w, _ in pairs]), dtype=torch.float32)
        return ws, crops_to_tensor(np.stack([c for _, c in pairs]))

    def chunks(self, size: int = 16, only: np.ndarray | None = None) -> Iterator[np.ndarray]:
        """All frames (or frames ``only``) in video order, ``size`` at a time (as :func:`stitch.tensors.render`
        batches them)."""
        idx = np.arange(self.n) if only is None else np.sort(np.asarray(only, np.int64))
        for a in range(0, len(idx), size):
            yield idx[a : a + size]

    def pivots(self) -> np.ndarray:
        """(n, ws, w_dim) every pivot (the keyframe features when no landmarks are given; small per frame)."""
        return np.concatenate([Latents.load(p).latents[self.face][v] for p, v in zip(self.pivot_files, self.local)])


class ArrayFrames(TrackFrames):
    """In-memory frames (pivots, uint8 crops) with :class:`TrackFrames`' interface: one block that always fits."""

    def __init__(self, pivots: np.ndarray, crops: np.ndarray):
        assert len(pivots) == len(crops), (pivots.shape, crops.shape)
        self._arrays = (pivots, crops)
        self.face, self.cache_blocks, self.loads = 0, 1, 0
        self.n = len(pivots)
        self.block = max(1, self.n)
        self.frame_index = np.arange(self.n)
        self.blocks = [np.arange(self.n)]
        self._held = {}

    def _block(self, b: int) -> tuple[np.ndarray, np.ndarray]:
        return self._arrays

    def pivots(self) -> np.ndarray:
        return self._arrays[0]


def epoch_order(frames: TrackFrames, keys: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One epoch's order of ``keys``: PTI's random permutation when the track is one block or every key is held in
    memory; otherwise block by block in random block order, randomly within each block."""
    if frames.fits or all(int(k) in frames._held for k in keys):
        return keys[rng.permutation(len(keys))]
    block = keys // frames.block
    parts = []
    for k in rng.permutation(len(frames.blocks)):
        mine = keys[block == k]
        parts.append(mine[rng.permutation(len(mine))])
    return np.concatenate(parts) if parts else keys[:0]
