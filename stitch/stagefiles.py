"""Typed read/write of the files the stages hand each other: one small dataclass per file.

Each class declares its arrays in ``SPEC``: key -> :class:`Array` (dtype + axes). Axes are named (``track``,
``face``, ``frame``, ``size``, ``res``, ``ws``, ``w_dim``) or fixed sizes; a named axis must have the same length
in every array of the file, so e.g. ``valid`` and ``crops`` agree on (face, frame). The frame axis is always
``frame``.
``save`` checks the arrays and writes them atomically (``stitch.atomic``) with the same keys, order and dtypes
as the stages always wrote; ``load`` checks them at the boundary and raises a one-line
:class:`~stitch.errors.StitchError` naming the file on a missing key or a wrong dtype/shape.

**Shards** (issue #12): the per-frame stages write one file per shard of ``shard_frames`` frames
(``crop/{shard}.npz`` holds the crops of that shard's frames only; ``stitch.segments.shard_range``). ``load`` of a
*list* of shard files (a rule's input given as a list) gathers them: arrays with a ``frame`` axis are joined along
it in list order, the others must agree between the shards. Per-frame jobs load their shard's file alone.
Crops and masks are stored compressed (``COMPRESS``): on the test clip masks shrink ~15x, crops ~1.4x.

=========================  ===================  =================================================================
file                       class                arrays
=========================  ===================  =================================================================
detect/{shard}.npz         :class:`Detections`  frame, boxes, scores, landmarks (detection, ...), num_frames
landmarks/tracks.npz       :class:`Tracks`      landmarks, present, boxes, areas, scores (track, frame, ...)
align/quads.npz            :class:`Quads`       quads, valid, raw_quads (face, frame, ...), track_ids (face,)
crop/{shard}.npz           :class:`Crops`       crops, valid, quads (face, frame, ...), track_ids (face,)
masks/{shard}.npz          :class:`Masks`       mask, full_mask, border_mask, content_mask, valid, method
invert/{shard}.npy,        :class:`~stitch.latents.Latents` (face, frame, ws, w_dim) float32 (``stitch.latents``)
edit/{edit}.npy
stitching/{edit}/{shard},  :class:`FaceCrops`   crops, valid (face, frame, ...), stats (JSON; joined: work summed,
recon/{shard}.npz,                              per-frame lists joined)
baseline/{method}/{edit}/
{shard}.npz
=========================  ===================  =================================================================
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

from stitch.atomic import save_npz
from stitch.errors import StitchError

FRAME = "frame"
#: The four STIT masks of ``masks.npz`` (``stitch.masks.stitching_masks``), in file order.
MASK_KINDS = ("mask", "full_mask", "border_mask", "content_mask")


@dataclass(frozen=True)
class Array:
    """One array of a stage file: exact dtype (``str`` = any unicode string) and axes (names or fixed sizes)."""

    dtype: type
    axes: tuple[str | int, ...]

    def dtype_ok(self, a: np.ndarray) -> bool:
        return a.dtype.kind == "U" if self.dtype is str else a.dtype == np.dtype(self.dtype)

    def describe(self, sizes: Mapping[str, int]) -> str:
        name = "str" if self.dtype is str else np.dtype(self.dtype).name
        axes = ", ".join(f"{a}={sizes[a]}" if a in sizes else str(a) for a in self.axes)
        return f"{name} ({axes})"


def check_arrays(where, arrays: Mapping[str, np.ndarray], spec: Mapping[str, Array],
                 error=StitchError) -> dict[str, int]:
    """Check ``arrays`` against ``spec``; returns the named axis sizes. ``error`` is raised (one line naming
    ``where``) on a missing key, a wrong dtype or a shape that does not fit the axes."""
    sizes: dict[str, int] = {}
    hint = "; rerun the rule that writes it" if error is StitchError else ""
    for key, want in spec.items():
        if key not in arrays:
            raise error(f"{where}: no array {key!r} (it has {sorted(arrays)}){hint}")
        a = arrays[key]
        ok = want.dtype_ok(a) and a.ndim == len(want.axes)
        for axis, n in zip(want.axes, a.shape) if ok else ():
            ok = ok and (n == axis if isinstance(axis, int) else sizes.setdefault(axis, n) == n)
        if not ok:
            raise error(f"{where}: {key!r} is {a.dtype.name} {tuple(a.shape)}, expected {want.describe(sizes)}{hint}")
    return sizes


def read_npz(path, keys) -> dict[str, np.ndarray]:
    """The arrays ``keys`` of an ``.npz`` that has them (missing keys are left out for :func:`check_arrays`)."""
    try:
        with np.load(path, allow_pickle=False) as npz:
            return {k: npz[k] for k in keys if k in npz.files}
    except FileNotFoundError:
        raise
    except (OSError, ValueError, zipfile.BadZipFile) as e:
        raise StitchError(f"{path}: not a readable .npz ({e}); rerun the rule that writes it") from None


def is_shards(path) -> bool:
    """A list of shard files (a rule input given as a list), rather than one file."""
    return isinstance(path, (list, tuple))


def shard_paths(path) -> list:
    """The shard files of a stage input: a list as it is, one file as a list of one."""
    return list(path) if is_shards(path) else [path]


def shards_name(paths) -> str:
    """How error messages name a list of shard files."""
    return f"{paths[0]} .. {paths[-1]} ({len(paths)} shards)" if paths else "(no shard files)"


def join_arrays(parts: list[dict[str, np.ndarray]], spec: Mapping[str, Array], where) -> dict[str, np.ndarray]:
    """Shards' arrays as one: ``frame``-axis arrays joined in order; the others must be equal in every shard."""
    if not parts:
        raise StitchError(f"{where}: no shard files; rerun the rule that writes them")
    out = {}
    for key, want in spec.items():
        if key not in parts[0]:
            continue
        values = [p[key] for p in parts]
        if FRAME in want.axes:
            out[key] = np.concatenate(values, axis=want.axes.index(FRAME))
        elif any(not np.array_equal(v, values[0]) for v in values[1:]):
            raise StitchError(f"{where}: {key!r} differs between the shards; rerun the rule that writes them")
        else:
            out[key] = values[0]
    return out


class StageFile:
    """Base of the ``.npz`` stage files: ``SPEC`` describes the arrays on disk, in file order. Subclasses whose
    fields are not the arrays themselves override :meth:`to_arrays` / :meth:`from_arrays`. ``COMPRESS``: saved
    with ``np.savez_compressed``."""

    SPEC: ClassVar[dict[str, Array]]
    COMPRESS: ClassVar[bool] = False

    def to_arrays(self) -> dict[str, np.ndarray]:
        return {k: getattr(self, k) for k in self.SPEC}

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]):
        return cls(**arrays)

    def check(self, where="stage file", error=ValueError) -> dict[str, int]:
        """Check the arrays against ``SPEC`` (and :meth:`check_sizes`); returns the named axis sizes."""
        sizes = check_arrays(where, self.to_arrays(), self.SPEC, error)
        self.check_sizes(sizes, where, error)
        return sizes

    def check_sizes(self, sizes: dict[str, int], where, error) -> None:
        """Consistency beyond ``SPEC`` (none by default)."""

    def save(self, path) -> None:
        """Check the arrays (a mismatch is a bug: ValueError) and write ``path`` atomically."""
        self.check(path)
        save_npz(path, compress=self.COMPRESS, **self.to_arrays())

    @classmethod
    def join(cls, parts: list, where="shards"):
        """The whole video's file from its shards' (loaded, in frame order)."""
        return cls.from_arrays(join_arrays([p.to_arrays() for p in parts], cls.SPEC, where))

    @classmethod
    def load(cls, path):
        """One file, or a list of shard files gathered (:meth:`join`)."""
        if is_shards(path):
            return cls.join([cls.load(p) for p in path], shards_name(path))
        arrays = read_npz(path, cls.SPEC)
        sizes = check_arrays(path, arrays, cls.SPEC)
        out = cls.from_arrays(arrays)
        out.check_sizes(sizes, path, StitchError)
        return out


@dataclass
class Detections(StageFile):
    """``detect/{shard}.npz``: every face found in one shard's frames, flat (``frame``: the frame within the
    shard of each detection; a frame's detections in the detector's order)."""

    frame: np.ndarray  # (detection,) int64
    boxes: np.ndarray  # (detection, 4) int64: left, top, right, bottom
    scores: np.ndarray  # (detection,) float64 HOG scores
    landmarks: np.ndarray  # (detection, 68, 2) float64, frame pixels
    num_frames: int  # frames in the shard (frames without a face have no row)

    SPEC: ClassVar = {
        "frame": Array(np.int64, ("detection",)), "boxes": Array(np.int64, ("detection", 4)),
        "scores": Array(np.float64, ("detection",)), "landmarks": Array(np.float64, ("detection", 68, 2)),
        "num_frames": Array(np.int64, ()),
    }

    def to_arrays(self) -> dict[str, np.ndarray]:
        return {**{k: getattr(self, k) for k in list(self.SPEC)[:-1]}, "num_frames": np.int64(self.num_frames)}

    @classmethod
    def from_arrays(cls, arrays):
        return cls(**{k: arrays[k] for k in list(cls.SPEC)[:-1]}, num_frames=int(arrays["num_frames"]))


@dataclass
class Tracks(StageFile):
    """``landmarks/tracks.npz``: every face track found (``track`` = id, 0 = largest face) over all frames; NaN
    where the face is absent."""

    landmarks: np.ndarray  # (track, frame, 68, 2) float64, frame pixels
    present: np.ndarray  # (track, frame) bool
    boxes: np.ndarray  # (track, frame, 4) float64: left, top, right, bottom
    areas: np.ndarray  # (track, frame) float64, px²
    scores: np.ndarray  # (track, frame) float64 HOG scores
    num_frames: int  # decoded frames (the frame axis; needed when no track was found)

    SPEC: ClassVar = {
        "landmarks": Array(np.float64, ("track", FRAME, 68, 2)), "present": Array(np.bool_, ("track", FRAME)),
        "boxes": Array(np.float64, ("track", FRAME, 4)), "areas": Array(np.float64, ("track", FRAME)),
        "scores": Array(np.float64, ("track", FRAME)), "num_frames": Array(np.int64, ()),
    }

    def to_arrays(self) -> dict[str, np.ndarray]:
        return {**{k: getattr(self, k) for k in list(self.SPEC)[:-1]}, "num_frames": np.int64(self.num_frames)}

    @classmethod
    def from_arrays(cls, arrays):
        return cls(**{k: arrays[k] for k in list(cls.SPEC)[:-1]}, num_frames=int(arrays["num_frames"]))

    def check_sizes(self, sizes, where, error) -> None:
        if sizes[FRAME] != self.num_frames:
            raise error(f"{where}: the arrays have {sizes[FRAME]} frames, num_frames says {self.num_frames}")


@dataclass
class Quads(StageFile):
    """``align/quads.npz``: FFHQ quads of the selected faces (``face`` k = track ``track_ids[k]``); NaN quads
    where ``valid`` is False."""

    quads: np.ndarray  # (face, frame, 4, 2) float64, smoothed
    valid: np.ndarray  # (face, frame) bool
    raw_quads: np.ndarray  # (face, frame, 4, 2) float64, un-smoothed
    track_ids: np.ndarray  # (face,) int64

    SPEC: ClassVar = {
        "quads": Array(np.float64, ("face", FRAME, 4, 2)), "valid": Array(np.bool_, ("face", FRAME)),
        "raw_quads": Array(np.float64, ("face", FRAME, 4, 2)), "track_ids": Array(np.int64, ("face",)),
    }


@dataclass
class Crops(StageFile):
    """``crop/crops.npz``: aligned crops of the selected faces (zeros where ``valid`` is False) and their quads."""

    crops: np.ndarray  # (face, frame, size, size, 3) uint8 RGB
    valid: np.ndarray  # (face, frame) bool
    quads: np.ndarray  # (face, frame, 4, 2) float64
    track_ids: np.ndarray  # (face,) int64

    SPEC: ClassVar = {
        "crops": Array(np.uint8, ("face", FRAME, "size", "size", 3)), "valid": Array(np.bool_, ("face", FRAME)),
        "quads": Array(np.float64, ("face", FRAME, 4, 2)), "track_ids": Array(np.int64, ("face",)),
    }
    COMPRESS: ClassVar = True


@dataclass
class Masks(StageFile):
    """``masks/masks.npz``: the STIT masks (``MASK_KINDS``) in crop space, uint8 0..255, and the method used.

    ``load(path, kinds)`` reads only the masks named (the others are large and often not needed)."""

    masks: dict[str, np.ndarray]  # kind -> (face, frame, size, size) uint8
    valid: np.ndarray  # (face, frame) bool
    method: str  # "bisenet" or "landmarks"

    SPEC: ClassVar = {
        **{k: Array(np.uint8, ("face", FRAME, "size", "size")) for k in MASK_KINDS},
        "valid": Array(np.bool_, ("face", FRAME)), "method": Array(str, ()),
    }
    COMPRESS: ClassVar = True

    def to_arrays(self) -> dict[str, np.ndarray]:
        return {**{k: self.masks[k] for k in MASK_KINDS if k in self.masks}, "valid": self.valid,
                "method": np.asarray(self.method)}

    @classmethod
    def from_arrays(cls, arrays):
        return cls({k: arrays[k] for k in MASK_KINDS if k in arrays}, arrays["valid"], str(arrays["method"]))

    @classmethod
    def load(cls, path, kinds: tuple[str, ...] = MASK_KINDS):
        spec = {k: a for k, a in cls.SPEC.items() if k in kinds or k not in MASK_KINDS}
        if is_shards(path):
            parts = [cls.load(p, kinds).to_arrays() for p in path]
            return cls.from_arrays(join_arrays(parts, spec, shards_name(path)))
        arrays = read_npz(path, spec)
        check_arrays(path, arrays, spec)
        return cls.from_arrays(arrays)

    def __getitem__(self, kind: str) -> np.ndarray:
        return self.masks[kind]


@dataclass
class FaceCrops(StageFile):
    """A method's rendered face crops for one edit (stitching, recon, baseline), same layout as
    :class:`Crops` at the generator's resolution, plus the stage's stats (JSON)."""

    crops: np.ndarray  # (face, frame, res, res, 3) uint8 RGB
    valid: np.ndarray  # (face, frame) bool
    stats: dict = field(default_factory=dict)

    SPEC: ClassVar = {
        "crops": Array(np.uint8, ("face", FRAME, "res", "res", 3)), "valid": Array(np.bool_, ("face", FRAME)),
        "stats": Array(str, ()),
    }

    def to_arrays(self) -> dict[str, np.ndarray]:
        return {"crops": self.crops, "valid": self.valid, "stats": np.asarray(json.dumps(self.stats))}

    @classmethod
    def from_arrays(cls, arrays):
        return cls(arrays["crops"], arrays["valid"], json.loads(str(arrays["stats"])))

    @classmethod
    def join(cls, parts: list, where="shards"):
        """Shards joined; their stats merged: ``work`` records summed, per-frame lists joined, the rest the first
        shard's."""
        from stitch.work import sum_work

        spec = {k: a for k, a in cls.SPEC.items() if k != "stats"}
        arrays = join_arrays([{"crops": p.crops, "valid": p.valid} for p in parts], spec, where)
        stats = {}
        for p in parts:
            for key, value in p.stats.items():
                if key == "work":
                    stats[key] = sum_work([stats[key], value]) if key in stats else value
                elif isinstance(value, list):
                    stats[key] = stats.get(key, []) + value
                else:
                    stats.setdefault(key, value)
        return cls(arrays["crops"], arrays["valid"], stats)
