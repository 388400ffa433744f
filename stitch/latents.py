"""Latent stage files (``invert/{shard}.npy``, ``edit/{edit}.npy``: :class:`Latents`) and reading frames out of
shard files without loading a whole video (:func:`frames_from_shards`). The ``.npz`` stage files are in
:mod:`stitch.stagefiles`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from stitch.atomic import save_npy
from stitch.errors import StitchError
from stitch.stagefiles import FRAME, Array, check_arrays, is_shards, join_arrays, read_npz, shard_paths, shards_name


def shard_lengths(paths) -> list[int]:
    """Frames in each shard file (``.npz`` stage files: their ``valid`` (face, frame); ``.npy`` latents: axis 1),
    read without loading the images."""
    out = []
    for path in shard_paths(paths):
        if str(path).endswith(".npy"):
            out.append(int(np.load(path, mmap_mode="r").shape[1]))
        else:
            out.append(int(read_npz(path, ["valid"])["valid"].shape[1]))
    return out


def frames_from_shards(paths, frames, read) -> np.ndarray:
    """Video frames ``frames`` of a per-frame array kept in shard files (or one file), read a shard at a time by
    ``read(path) -> array (frame, ...)`` and only from the shards that hold one of them: the job's memory holds
    one shard, not the video."""
    paths = shard_paths(paths)
    frames = np.asarray(frames, np.int64)
    out: dict[int, np.ndarray] = {}
    offset = 0
    for path, n in zip(paths, shard_lengths(paths)):
        mine = frames[(frames >= offset) & (frames < offset + n)]
        if len(mine):
            a = read(path)
            out.update({int(t): np.array(a[t - offset]) for t in mine})
        offset += n
    missing = sorted(set(frames.tolist()) - set(out))
    if missing:
        raise StitchError(f"{shards_name(paths)}: no frame {missing[0]} (they have {offset}); rerun the stages before")
    return np.stack([out[int(t)] for t in frames]) if len(frames) else np.zeros((0,))


@dataclass
class Latents:
    """``invert/pivots.npy`` (e4e pivots) and ``edit/{edit}.npy`` (edited latents): W+ latents of every face and
    frame (zeros where the crop is not valid)."""

    latents: np.ndarray  # (face, frame, ws, w_dim) float32

    SPEC: ClassVar = {"latents": Array(np.float32, ("face", FRAME, "ws", "w_dim"))}

    def save(self, path) -> None:
        check_arrays(path, {"latents": self.latents}, self.SPEC, ValueError)
        save_npy(path, self.latents)

    @classmethod
    def load(cls, path) -> Latents:
        """One ``.npy``, or a list of shard files joined along the frame axis."""
        if is_shards(path):
            parts = [cls.load(p).latents for p in path]
            return cls(join_arrays([{"latents": a} for a in parts], cls.SPEC, shards_name(path))["latents"])
        return cls(cls.read(path))

    @staticmethod
    def save_chunks(path, shape: tuple[int, ...], chunks) -> None:
        """Write a (face, frame, ws, w_dim) float32 ``.npy`` atomically from ``chunks`` (arrays in file order:
        face by face, each face's frames shard by shard), never holding the whole array; the bytes are
        ``np.save``'s."""
        from stitch.atomic import atomic_path

        header = {"descr": np.lib.format.dtype_to_descr(np.dtype(np.float32)), "fortran_order": False,
                  "shape": tuple(int(n) for n in shape)}
        written = 0
        with atomic_path(path) as tmp, open(tmp, "wb") as fh:
            np.lib.format.write_array_header_1_0(fh, header)
            for chunk in chunks:
                fh.write(np.ascontiguousarray(chunk, np.float32).tobytes())
                written += chunk.size
            if written != int(np.prod(shape)):
                raise ValueError(f"{path}: {written} values written for shape {shape}")

    @classmethod
    def read(cls, path, mmap_mode=None) -> np.ndarray:
        """The checked array of one ``.npy`` (memory-mapped with ``mmap_mode``)."""
        try:
            latents = np.load(path, mmap_mode=mmap_mode, allow_pickle=False)
        except ValueError as e:
            raise StitchError(f"{path}: not a readable .npy ({e}); rerun the rule that writes it") from None
        check_arrays(path, {"latents": latents}, cls.SPEC)
        return latents

    @classmethod
    def load_shard(cls, path, shard: int, shard_frames: int | None, count: int) -> Latents:
        """The latents of shard ``shard`` (``count`` frames, checked) for a per-shard job: from a list of shard files
        that shard's file alone, from one whole-video file only that shard's frames (memory-mapped, so a job's memory
        does not grow with the video)."""
        from stitch.shards import shard_of

        if is_shards(path):
            shard, shard_frames, path = 0, None, path[shard]
        return cls(np.array(shard_of(cls.read(path, "r"), shard, shard_frames, count, path)))

