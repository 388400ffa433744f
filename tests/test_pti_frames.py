"""PTI reads its frames shard by shard (stitch.pti_frames, issue #12): the same tuning as in memory when the video
is one block, block by block when it is longer (the same result for any shard size), keyframes held in memory."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import pivot_frames

from stitch.configs import PTIConfig
from stitch.pti import pti_tune
from stitch.pti_frames import TrackFrames, epoch_order
from stitch.latents import Latents
from stitch.stagefiles import Crops


def _shards(G, tmp_path, n: int, shard_frames: int, invalid=(2,)):
    """Pivots and crops of ``n`` frames (frames ``invalid`` without a face), written as shard files like the
    per-shard stages write them; returns (crop files, pivot files, the valid frames' pivots and crops)."""
    ws, crops = pivot_frames(G, n)
    valid = np.ones((1, n), bool)
    valid[0, list(invalid)] = False
    crops[~valid[0]] = 0
    ws[~valid[0]] = 0
    crop_files, pivot_files = [], []
    for k, a in enumerate(range(0, n, shard_frames)):
        b = min(a + shard_frames, n)
        crop_files.append(tmp_path / f"crop_{k:04d}.npz")
        pivot_files.append(tmp_path / f"invert_{k:04d}.npy")
        Crops(crops[None, a:b], valid[:, a:b], np.zeros((1, b - a, 4, 2)), np.array([0], np.int64)).save(crop_files[-1])
        Latents(ws[None, a:b]).save(pivot_files[-1])
    return crop_files, pivot_files, ws[valid[0]], crops[valid[0]]


def _same_weights(a, b) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


def test_frames_in_one_block_tune_as_in_memory(G, tmp_path):
    """A track of at most one block (here 11 valid frames in 3 shard files) gives bit-identical weights and stats to
    the in-memory path, the edit regulariser's bookkeeping included; the invalid frame is skipped as before."""
    crop_files, pivot_files, ws, crops = _shards(G, tmp_path, 12, 5)
    cfg = PTIConfig(epochs=2, lr=1e-3)
    frames = TrackFrames(crop_files, pivot_files, 0)
    assert len(frames) == 11 and frames.frame_index.tolist() == [0, 1, *range(3, 12)] and frames.fits
    Ga, sa = pti_tune(G, ws, crops, cfg, progress=False)
    Gb, sb = pti_tune(G, None, None, cfg, progress=False, frames=frames)
    assert _same_weights(Ga, Gb) and sa == sb
    assert frames.loads == 3, "each shard read once"


def test_streamed_frames_visit_block_by_block(G, tmp_path):
    """Blocks of 4 frames over 3 shards of 4: every epoch visits the frames block by block (each frame once), so a
    shard is read about once per pass (the PSNR before, each epoch, the PSNR after), not once per step."""
    crop_files, pivot_files, ws, crops = _shards(G, tmp_path, 12, 4, invalid=())
    frames = TrackFrames(crop_files, pivot_files, 0, block=4)
    assert not frames.fits and frames.cache_blocks == 2
    order = epoch_order(frames, np.arange(len(frames)), np.random.default_rng(0))
    assert sorted(order.tolist()) == list(range(12))
    assert (np.diff(order // 4) != 0).sum() == 2, f"one run per block: {order}"
    epochs = 3
    _, st = pti_tune(G, None, None, PTIConfig(epochs=epochs, lr=3e-3), progress=False, frames=frames)
    assert st["steps"] == epochs * 12
    assert epochs + 2 <= frames.loads <= 3 * (epochs + 2), frames.loads
    assert st["psnr_after"] > st["psnr_before_keyframes"]


def test_the_shard_size_does_not_change_the_tuning(G, tmp_path):
    """The order and the batches come from the blocks, not the shard files: the same frames in shards of 3 or of
    5 tune to the same weights."""
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir(), b.mkdir()
    cfg = PTIConfig(epochs=2, lr=1e-3, batch=2)
    tuned = []
    for d, shard_frames in ((a, 3), (b, 5)):
        crop_files, pivot_files, _, _ = _shards(G, d, 14, shard_frames)
        tuned.append(pti_tune(G, None, None, cfg, progress=False,
                              frames=TrackFrames(crop_files, pivot_files, 0, block=4)))
    assert _same_weights(tuned[0][0], tuned[1][0]) and tuned[0][1] == tuned[1][1]


def test_keyframes_are_held_while_the_rest_streams(G, tmp_path):
    """The keyframe schedule holds its keyframes in memory: the epochs read no shard, nor does the untuned
    generator's PSNR (rendered on the keyframes only); only the PSNR of every frame after tuning streams the
    shards."""
    crop_files, pivot_files, ws, crops = _shards(G, tmp_path, 20, 4, invalid=())
    frames = TrackFrames(crop_files, pivot_files, 0, block=4)
    cfg = PTIConfig(epochs=4, lr=1e-3, keyframes=3, batch=1, refine_frames=0)
    _, st = pti_tune(G, None, None, cfg, progress=False, frames=frames)
    held = sorted(frames._held)
    assert held == sorted(st["keyframes"]) and len(held) == 3
    assert frames.loads <= 5 + 3, frames.loads  # 5 shards for the PSNR after, + at most the keys'
    assert len(st["psnr_after_per_frame"]) == 20
    assert st["psnr_after_keyframes"] == pytest.approx(np.mean([st["psnr_after_per_frame"][i] for i in held]))


def test_streaming_holds_two_blocks_whatever_the_shard_size(G, tmp_path):
    """What PTI holds of a streamed track is two blocks of frames, with shards of 3 or of 10 frames (shards of 10 hold
    more than a block: only the block's frames of a shard are kept); a block is bounded in bytes at 1024 px."""
    from stitch.pti_frames import BLOCK_BYTES, BLOCK_FRAMES, block_frames

    class Counting(TrackFrames):
        most = 0

        def _block(self, b):
            out = super()._block(b)
            self.most = max(self.most, sum(len(c) for _, c in self._cache.values()))
            return out

    for shard_frames in (3, 10):
        d = tmp_path / str(shard_frames)
        d.mkdir()
        crop_files, pivot_files, _, _ = _shards(G, d, 20, shard_frames, invalid=())
        frames = Counting(crop_files, pivot_files, 0, block=4)
        pti_tune(G, None, None, PTIConfig(epochs=2, lr=1e-3, batch=3), progress=False, frames=frames)
        assert frames.most == 8, (shard_frames, frames.most)
    assert block_frames(64) == block_frames(256) == BLOCK_FRAMES
    assert block_frames(1024) == 85 and 85 * 3 * 1024**2 <= BLOCK_BYTES < 86 * 3 * 1024**2
