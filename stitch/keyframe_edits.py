"""Cheap edits on a few keyframes, probed as the evaluation probes a finished video (used by rule ``calibrate``).

:func:`load_keyframes` picks keyframes spread over the main face track (track 0) and reads them with their quads,
paste masks and pivots. :class:`KeyframeEdits` renders the pivots moved by a set of factors with one generator,
pastes the renders into the source keyframes exactly as the paste stage does (``full_mask``, feather,
``paste.mode``) and probes the pasted frames with :mod:`stitch.attributes` (whole frame, largest detected face, as
:mod:`stitch.metrics` does): age, P(male), smile and the dlib descriptor distance to the un-edited render. Every
measured set of factors is cached.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from stitch.errors import StitchError


def load_keyframes(video, quads_npz, masks_npz, pivots_npy, n: int) -> dict[str, np.ndarray]:
    """{keys, frames (K, H, W, 3), quads (K, 4, 2), alphas (K, R, R) uint8, pivots (K, L, C)} of ``n`` keyframes of
    track 0 (frames with a quad, a mask and a pivot)."""
    from stitch.preview import pick_keyframes, read_keyframes
    from stitch.latents import Latents, frames_from_shards, shard_lengths
    from stitch.stagefiles import Masks, Quads, read_npz, shard_paths

    q = Quads.load(quads_npz)
    masks = shard_paths(masks_npz)
    mask_valid = np.concatenate([read_npz(p, ["valid"])["valid"] for p in masks], axis=1)
    if not (q.valid.shape == mask_valid.shape) or sum(shard_lengths(pivots_npy)) != q.valid.shape[1]:
        raise StitchError(f"{quads_npz}, {masks_npz}, {pivots_npy}: face / frame counts differ; rerun align onwards")
    keys = pick_keyframes(q.valid[0] & mask_valid[0], n)
    if len(keys) == 0:
        raise StitchError(f"{quads_npz}: the main face track has no aligned frame, so an edit target cannot be "
                          "calibrated; give the edit a raw factor (e.g. age: 8) instead")
    alphas = frames_from_shards(masks, keys, lambda p: Masks.load(p, ("full_mask",))["full_mask"][0])
    pivots = frames_from_shards(pivots_npy, keys, lambda p: Latents.read(p, "r")[0])
    return {"keys": keys, "frames": read_keyframes(video, keys), "quads": q.quads[0, keys], "alphas": alphas,
            "pivots": pivots}


class KeyframeEdits:
    """Render, paste and probe edits of a few keyframes (see the module doc)."""

    def __init__(self, data: Mapping[str, np.ndarray], G, directions, probe, feather: bool = True,
                 mode: str = "generator", device="cpu"):
        from stitch.paste import PASTE_MODES, feather_radius

        if mode not in PASTE_MODES:
            raise StitchError(f"paste.mode = {mode!r} is not one of {', '.join(PASTE_MODES)}; fix config.yaml")
        self.G, self.directions, self.probe, self.device = G, directions, probe, device
        self.pivots, self.quads, self.alphas = data["pivots"], data["quads"], data["alphas"]
        self.radius = feather_radius(G.img_resolution) if feather else 0
        self.mode, self.renders, self._cache = mode, 0, {}
        self.source = self.describe(data["frames"])
        found = self.source["found"]
        if not found.any():
            raise StitchError(f"the attribute probe finds no face on keyframes {list(map(int, data['keys']))} of the "
                              "source, so an edit target cannot be calibrated; give the edit a raw factor instead")
        self.keys = np.asarray(data["keys"])[found]
        self.frames = np.asarray(data["frames"])[found]
        self.pivots, self.quads, self.alphas = self.pivots[found], self.quads[found], self.alphas[found]
        self.source = {k: v[found] for k, v in self.source.items()}
        self.base = self.render({})
        self.reference = self.describe(self.paste(self.base))
        self._cache[()] = {**self.reference, "id_dist": 0.0 if self.reference["found"].any() else float("nan")}

    def describe(self, frames: np.ndarray) -> dict[str, np.ndarray]:
        """Probe readings of whole frames: desc, found, age, p_male, smile (NaN where no face)."""
        from stitch.attributes import attributes, frame_descriptors

        desc, found, lms = frame_descriptors(frames)
        return {"desc": desc, "found": np.asarray(found, bool), **attributes(self.probe, desc, found, lms)}

    def render(self, factors: Mapping[str, float]) -> np.ndarray:
        """(K, R, R, 3) uint8 crops of the pivots moved by ``factors`` (all zero / empty: the pivots)."""
        from stitch.edit import apply_edit
        from stitch.tensors import render, tensor_to_crops

        nonzero = {d: f for d, f in factors.items() if f != 0}
        w = apply_edit(self.pivots, self.directions, nonzero) if nonzero else self.pivots
        self.renders += len(w)
        return tensor_to_crops(render(self.G, w, device=self.device))

    def paste(self, crops: np.ndarray) -> np.ndarray:
        from stitch.paste import paste_video

        bases = self.base[None] if self.mode == "detail" else None
        valid = np.ones((1, len(crops)), bool)
        return np.stack(list(paste_video(self.frames, crops[None], self.quads[None], self.alphas[None], valid,
                                         self.radius, bases)))

    def measure(self, factors: Mapping[str, float]) -> dict:
        """Readings of the keyframes edited by ``factors``: per keyframe age, p_male, smile, found, plus ``id_dist``
        (keyframe mean distance to the un-edited render; NaN when no keyframe has both faces)."""
        key = tuple(sorted((d, float(f)) for d, f in factors.items() if f != 0))
        if key not in self._cache:
            out = self.describe(self.paste(self.render(dict(key))))
            dist = np.linalg.norm(out["desc"] - self.reference["desc"], axis=1)
            dist = dist[np.isfinite(dist)]
            out["id_dist"] = float(dist.mean()) if dist.size else float("nan")
            self._cache[key] = out
        return self._cache[key]
