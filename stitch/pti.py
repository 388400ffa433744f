"""Pivotal tuning (PTI): tune one generator on all frames of a face track, pivots fixed.

Reference schedule (STIT): ``epochs`` passes over all frames, batch 1, one Adam step per frame,
loss = mse_weight * MSE + lpips_weight * LPIPS(alex), noise_mode const. Without LPIPS weights the perceptual
term is dropped (the caller logs that fallback).

Optional (``edit_reg_weight`` > 0, not in STIT; off by default): an edit-preserving regulariser in the spirit of
PTI's locality regulariser. Tuning on the pivots alone lets the generator stop responding to the edit directions
around them (measured with the demo pack on talk_1: the age edit moves the probe's age +18.5 years with the
untuned generator, +6.8 after PTI). Each step also draws one of the pack's directions ``d`` and a strength
``t ~ U(-T, T)`` (``T`` its typical factor) and penalises
``MSE((G_t(w + t/2 d) - G_t(w)) - (G_0(w + t/2 d) - G_0(w)))``: the tuned generator ``G_t`` must change the
image under an edit as the pack's generator ``G_0`` does, while its reconstruction of the pivot is free to fit
the frame.
"""

from __future__ import annotations

import copy
import logging
import math
from collections.abc import Callable, Mapping

import numpy as np
import torch
from stitch.progress import tqdm

from stitch.configs import PTIConfig
from stitch.edit import TYPICAL_FACTOR
from stitch.keyframes import lagging_frames, select_keyframes
from stitch.models.stylegan2 import Generator
from stitch.pti_budget import planned_epochs
from stitch.pti_frames import ArrayFrames, TrackFrames, block_frames, epoch_order
from stitch.tensors import adam, render
from stitch.work import sum_work, work

log = logging.getLogger(__name__)
Perceptual = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


EditSpace = Mapping[str, tuple[torch.Tensor, float]]  # name -> ((num_ws, w_dim) direction, typical factor)


def edit_space(directions: Mapping[str, torch.Tensor]) -> dict[str, tuple[torch.Tensor, float]]:
    """The pack directions that have a typical factor (``stitch.edit.TYPICAL_FACTOR``), for the edit regulariser."""
    return {k: (directions[k].float(), TYPICAL_FACTOR[k]) for k in sorted(directions) if k in TYPICAL_FACTOR}


def edit_response_loss(
    Gt: Generator, G0: Generator, w: torch.Tensor, y: torch.Tensor, y0: torch.Tensor, space: EditSpace,
    rng: np.random.Generator,
) -> torch.Tensor:
    """MSE between the tuned and the original generator's image change under one random edit of ``w`` (1, L, C).

    ``y`` / ``y0`` are ``Gt``'s / ``G0``'s images of ``w`` (computed by the caller; gradients flow through ``y``).
    """
    names = list(space)
    d, limit = space[names[rng.integers(len(names))]]
    w_edit = w + float(rng.uniform(-limit, limit)) / 2 * d.to(w.device)[None]
    with torch.no_grad():
        ref = G0.synthesis(w_edit, noise_mode="const") - y0
    return ((Gt.synthesis(w_edit, noise_mode="const") - y) - ref).square().mean()


def psnr(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per-image PSNR (dB) of images in [-1, 1]."""
    mse = (a.clamp(-1, 1) - b).square().flatten(1).mean(1)
    return 10 * torch.log10(4.0 / mse.clamp_min(1e-12))


def pti_tune(
    G: Generator,
    pivots: np.ndarray | None,
    crops: np.ndarray | None,
    cfg: PTIConfig,
    perceptual: Perceptual | None = None,
    device: str | torch.device = "cpu",
    progress: bool = True,
    space: EditSpace | None = None,
    features: np.ndarray | None = None,
    frames: TrackFrames | None = None,
) -> tuple[Generator, dict]:
    """Return a tuned copy of ``G`` (``G`` itself is untouched) and its stats: the PSNR of every frame after, and
    before and after on the keyframes chosen at the start (every frame when there are no keyframes).

    The frames are ``pivots`` (N, ws, w_dim) and ``crops`` (N, R, R, 3) uint8 in memory, or ``frames`` read shard by
    shard from disk (:class:`stitch.pti_frames.TrackFrames`; pivots and crops None).
    ``space``: directions for the edit-preserving regulariser (used when ``cfg.edit_reg_weight`` > 0).
    ``features``: (N, D) per-frame pose/expression features for keyframe selection (``cfg.keyframes`` > 0;
    :func:`stitch.keyframes.landmark_features`); without them the pivots are the features.
    """
    regularise = cfg.edit_reg_weight > 0
    if regularise and not space:
        raise ValueError("PTI edit_reg_weight > 0 needs edit directions with a typical factor (age, gender, smile)")
    if frames is None:
        assert pivots.ndim == 3 and pivots.shape[1:] == (G.num_ws, G.w_dim), pivots.shape
        assert crops.shape[0] == pivots.shape[0] and crops.shape[1] == G.img_resolution, (crops.shape, pivots.shape)
        frames = ArrayFrames(pivots, crops)
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    n = len(frames)
    features = frames.pivots().reshape(n, -1) if features is None else np.asarray(features)
    assert len(features) == n, (features.shape, n)
    tuner = _Tuner(G, frames, cfg, perceptual, device, space if regularise else None, rng)
    keys = select_keyframes(features, cfg.keyframes, cfg.keyframe_radius, cfg.keyframe_spacing)
    if len(keys) < n:  # a keyframe set (bounded by the schedule) stays in memory; all frames stream
        frames.hold(keys)
    first_keys = keys  # the untuned generator is rendered on these only: a pass over every frame would be linear
    before = frames_psnr(G, frames, device, first_keys)
    added, refine = np.zeros(0, np.int64), cfg.refine_frames > 0 and len(keys) < n
    epochs, epoch = planned_epochs(cfg, n, len(keys), regularise), 0
    bar = tqdm(total=epochs * len(keys), desc="pti", disable=not progress)
    loss = float("nan")
    while epoch < epochs:
        if refine and epoch == epochs // 2:
            refine, added = False, lagging_frames(tuner.psnr_all().numpy(), keys, features, cfg.refine_frames,
                                                  cfg.refine_margin_db)
            keys = np.union1d(keys, added)
            frames.hold(added)
            epochs = planned_epochs(cfg, n, len(keys), regularise, refined=True, epoch=epoch, steps=tuner.steps,
                                    updates=tuner.updates)  # the frames really added, not the most that could be
            bar.total = bar.n + (epochs - epoch) * len(keys)
        tuner.set_lr(cfg.lr * _lr_factor(cfg.lr_schedule, epoch, epochs))
        order = epoch_order(frames, keys, rng)
        for i in range(0, len(order), cfg.batch):
            loss = tuner.step(order[i : i + cfg.batch])
            bar.update(len(order[i : i + cfg.batch]))
        epoch += 1
        bar.set_postfix(epoch=epoch, loss=f"{loss:.4f}")
    bar.close()
    Gt = tuner.result()
    stats = _stats(cfg, epochs, tuner, keys, added, first_keys, before, frames_psnr(Gt, frames, device), perceptual)
    log.info("PTI: %d frames (%d keyframes, %d added), %d steps, PSNR of the first %d keyframes %.2f -> %.2f dB, "
             "of all frames %.2f dB (min %.2f); %d shard reads", n, len(keys), len(added), tuner.steps,
             len(first_keys), stats["psnr_before_keyframes"] or 0, stats["psnr_after_keyframes"] or 0,
             stats["psnr_after"] or 0, stats["psnr_after_min"] or 0, frames.loads)
    return Gt.cpu(), stats


def frames_psnr(G: Generator, frames: TrackFrames, device="cpu", only: np.ndarray | None = None) -> torch.Tensor:
    """(N,) PSNR of ``G`` rendered at every frame's pivot against its crop (or at frames ``only``: one value each),
    a chunk at a time."""
    out = []
    for idx in frames.chunks(only=only):
        ws, targets = frames.batch(idx)
        out.append(psnr(render(G, ws, device=device), targets))
    return torch.cat(out) if out else torch.zeros(0)


def _stats(cfg: PTIConfig, epochs: int, tuner, keys, added, first_keys, before: torch.Tensor, after: torch.Tensor,
           perceptual) -> dict:
    """``before``: the untuned generator's PSNR on ``first_keys`` (the keyframes chosen at the start; every frame
    under ``reference``); ``after``: the tuned generator's on every frame."""
    n, m = len(after), len(first_keys)
    return {
        "frames": n, "epochs": epochs, "steps": tuner.steps, "lpips": perceptual is not None,
        "edit_reg_weight": cfg.edit_reg_weight, "keyframes": keys.tolist(), "refined": added.tolist(),
        "psnr_before_keyframes": float(before.mean()) if m else None,
        "psnr_after_keyframes": float(after[torch.as_tensor(first_keys)].mean()) if m else None,
        "psnr_after": float(after.mean()) if n else None,
        "psnr_after_min": float(after.min()) if n else None, "psnr_after_per_frame": after.tolist(),
        # forwards: the before (first keyframes) / after (every frame) renders and those counted by the tuner
        "work": work(tuner.steps, m + n + tuner.forwards, shared_by_edits=True),
    }


def _lr_factor(schedule: str, epoch: int, epochs: int) -> float:
    if schedule == "constant":
        return 1.0
    if schedule == "cosine":
        return 0.5 * (1 + math.cos(math.pi * epoch / max(1, epochs)))
    raise ValueError(f"unknown PTI lr_schedule {schedule!r}")


class _Tuner:
    """The generator being tuned, its optimiser, and the count of generator passes (stitch.work): a step is one
    image through the tuned generator with backward (pivot, and edited pivot when regularising); forwards are the
    untuned generator's reference images and the mid-way check's renders. The reference images are kept for the
    frames held in memory (all of them when the video fits); a frame streamed from disk has its rendered again."""

    def __init__(self, G, frames: TrackFrames, cfg: PTIConfig, perceptual, device, space, rng):
        self.frames, self.cfg, self.perceptual, self.device = frames, cfg, perceptual, device
        self.space, self.rng = space, rng
        self.G0 = copy.deepcopy(G).to(device).eval().requires_grad_(False) if space else None
        self.y0: dict[int, torch.Tensor] = {}  # the untuned generator's image of each tuned pivot (regulariser)
        self.Gt = copy.deepcopy(G).to(device).train().requires_grad_(True)
        self.Gt.mapping.requires_grad_(False)
        for res in self.Gt.synthesis.block_resolutions:
            if res < cfg.freeze_below:  # fewer weights and a backward that stops above them
                getattr(self.Gt.synthesis, f"b{res}").requires_grad_(False)
        self.params = [p for p in self.Gt.synthesis.parameters() if p.requires_grad]
        self.opt = adam(self.params, lr=cfg.lr, betas=(0.9, cfg.beta2))
        self.average = [p.detach().clone() for p in self.params] if cfg.ema > 0 else None
        self.steps = self.forwards = self.updates = 0

    def result(self) -> Generator:
        """The tuned generator: the last weights, or their running average (``ema``)."""
        if self.average is not None:
            with torch.no_grad():
                for a, p in zip(self.average, self.params):
                    p.copy_(a)
        return self.Gt.eval().requires_grad_(False)

    def set_lr(self, lr: float) -> None:
        for group in self.opt.param_groups:
            group["lr"] = lr

    def reference(self, idx: np.ndarray, w: torch.Tensor) -> torch.Tensor:
        out = []
        for j, i in enumerate(int(i) for i in idx):
            y0 = self.y0.get(i)
            if y0 is None:
                with torch.no_grad():
                    y0 = self.G0.synthesis(w[j : j + 1], noise_mode="const")
                self.forwards += 1
                if self.frames.fits or i in self.frames._held:
                    self.y0[i] = y0
            out.append(y0)
        return torch.cat(out)

    def psnr_all(self) -> torch.Tensor:
        self.forwards += len(self.frames)
        with torch.no_grad():
            return frames_psnr(self.Gt, self.frames, self.device)

    def step(self, idx: np.ndarray) -> float:
        w, x = (t.to(self.device) for t in self.frames.batch(idx))
        y = self.Gt.synthesis(w, noise_mode="const")
        loss = self.cfg.mse_weight * (y - x).square().mean()
        if self.perceptual is not None and self.cfg.lpips_weight:
            loss = loss + self.cfg.lpips_weight * self.perceptual(y, x).mean()
        self.steps += len(idx)
        if self.space is not None and self.updates % self.cfg.edit_reg_every == 0:
            y0 = self.reference(idx, w)
            reg = edit_response_loss(self.Gt, self.G0, w, y, y0, self.space, self.rng)
            loss = loss + self.cfg.edit_reg_weight * self.cfg.edit_reg_every * reg
            self.steps += len(idx)
            self.forwards += len(idx)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        if self.average is not None:
            with torch.no_grad():
                for a, p in zip(self.average, self.params):
                    a.lerp_(p, 1 - self.cfg.ema)
        self.updates += 1
        return float(loss.detach())


def run(crops_npz, pivots_npy, tracks_npz, pack_dir, settings: dict, out_generators, out_stats, device="cpu") -> dict:
    """Stage ``pti``: one tuned generator per face track (bundle ``face<k>``) + PSNR stats JSON. ``crops_npz`` /
    ``pivots_npy``: the shard files (or one file each), read a block of frames at a time
    (:class:`stitch.pti_frames.TrackFrames`). The tracks' landmarks choose the keyframes when ``keyframes`` > 0."""
    from stitch.atomic import write_json
    from stitch.keyframes import landmark_features
    from stitch.models.native import save_bundle
    from stitch.packs import Pack
    from stitch.stagefiles import Tracks, read_npz, shard_paths

    first = read_npz(shard_paths(crops_npz)[0], ["valid", "track_ids"])
    landmarks = Tracks.load(tracks_npz).landmarks
    pack = Pack.open(pack_dir)
    G, cfg, perceptual, space = prepare(pack, settings, device)
    tuned, stats = {}, {"settings": settings, "faces": {}}
    for f in range(first["valid"].shape[0]):
        frames = TrackFrames(crops_npz, pivots_npy, f, block=block_frames(G.img_resolution))
        features = landmark_features(landmarks[first["track_ids"][f]][frames.frame_index])
        Gt, st = pti_tune(G, None, None, cfg, perceptual=perceptual, device=device, space=space, features=features,
                          frames=frames)
        tuned[f"face{f}"] = Gt
        stats["faces"][f"face{f}"] = st
    stats["work"] = sum_work(st["work"] for st in stats["faces"].values())
    save_bundle(tuned, out_generators)
    write_json(out_stats, stats)
    return stats


def prepare(pack, settings: Mapping, device="cpu") -> tuple[Generator, PTIConfig, Perceptual | None, EditSpace | None]:
    """What :func:`pti_tune` needs from a pack and the workflow's ``pti`` settings: the generator, the config, LPIPS
    (when weighted and shipped) and the edit space (when the edit regulariser is on)."""
    cfg = PTIConfig.from_settings(settings)
    perceptual = load_pack_lpips(pack, device) if cfg.lpips_weight else None
    space = edit_space(pack.directions) if cfg.edit_reg_weight > 0 else None
    return pack.generator(device), cfg, perceptual, space


def load_pack_lpips(pack, device="cpu") -> Perceptual | None:
    """LPIPS(alex) from the pack when it ships the weights; otherwise None (MSE-only PTI, logged)."""
    net = pack.lpips(device)
    if net is None:
        log.warning("pack %s has no LPIPS weights: PTI uses the MSE term only (fallback)", pack.name)
        return None
    return lambda a, b: net(a, b)
