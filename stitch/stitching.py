"""Stitching tuning (STIT): per frame, tune a copy of the PTI generator so the edited face blends into the
un-edited surroundings.

loss = masked_MSE(G(w_edit), original_crop, border_mask) + content_weight * masked_MSE(G(w_edit), edited_0, content_mask)
with masked_MSE = sum(err * mask) / sum(mask); Adam lr 3e-4; up to ``max_steps`` steps; early stop once the border
loss is below ``border_threshold``. ``edited_0`` is the PTI generator's edited image before tuning.

Work is counted per frame (``stitch.work``): ``steps`` = tuning steps (forward + backward + Adam), ``forwards`` =
forward-only passes (the untuned edited image, which is also the result when its border already matches and the
tuning starts from PTI's weights; the render that finds a carried-over tuning's border matching; the final render).
"""

from __future__ import annotations

import copy

import numpy as np
import torch
from stitch.progress import tqdm

from stitch.configs import StitchingConfig
from stitch.models.stylegan2 import Generator
from stitch.tensors import adam, crops_to_tensor, tensor_to_crops
from stitch.work import work_of


def masked_mse(a: torch.Tensor, b: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """sum(err * mask) / sum(mask), err = per-pixel squared error averaged over channels; mask (N,1,H,W)."""
    err = (a - b).square().mean(dim=1, keepdim=True)
    return (err * mask).sum() / mask.sum().clamp_min(1e-8)


class Tuning:
    """A tuned copy of a generator and its Adam state: per frame (STIT), or carried from frame to frame
    (``warm_start``: consecutive frames need nearly the same change, so most start with the border matched)."""

    def __init__(self, G: Generator, cfg: StitchingConfig, device: str | torch.device = "cpu"):
        self.Gt = copy.deepcopy(G).to(device).train().requires_grad_(True)
        self.Gt.mapping.requires_grad_(False)
        self.opt = adam((p for p in self.Gt.synthesis.parameters() if p.requires_grad), lr=cfg.lr)


def stitch_frame(
    G: Generator, w_edit: torch.Tensor, original: torch.Tensor, border: torch.Tensor, content: torch.Tensor,
    cfg: StitchingConfig, device: str | torch.device = "cpu", tuning: Tuning | None = None,
) -> tuple[torch.Tensor, dict]:
    """Tune a copy of G for one frame (or go on tuning ``tuning``, the previous frame's); returns the stitched
    image (1,3,R,R) and stats. ``edited_0`` of the content loss is always ``G``'s (PTI's) edited image."""
    with torch.no_grad():
        edited0 = G.synthesis(w_edit.to(device), noise_mode="const")
    if cfg.max_steps <= 0 or float(border.sum()) == 0:
        return edited0.cpu(), {"steps": 0, "forwards": 1, "border_loss": None}
    original, border, content, w = original.to(device), border.to(device), content.to(device), w_edit.to(device)
    if tuning is None:  # tuning starts from PTI's weights, whose render is edited0: a matching border needs no copy
        start = float(masked_mse(edited0, original, border))
        if start < cfg.border_threshold:
            return edited0.cpu(), {"steps": 0, "forwards": 1, "border_loss": start, "border_loss_start": start}
    tuning = tuning or Tuning(G, cfg, device)
    Gt, opt = tuning.Gt, tuning.opt
    steps, forwards, border_loss, border_start, img = 0, 1, None, None, edited0
    for _ in range(cfg.max_steps):
        img = Gt.synthesis(w, noise_mode="const")
        b_loss = masked_mse(img, original, border)
        border_loss = float(b_loss.detach())
        border_start = border_loss if border_start is None else border_start
        if border_loss < cfg.border_threshold:
            forwards += 1  # this render is the result: no backward
            break
        loss = b_loss + cfg.content_weight * masked_mse(img, edited0, content)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        steps += 1
    else:
        with torch.no_grad():
            img = Gt.synthesis(w, noise_mode="const")
            border_loss = float(masked_mse(img, original, border))
        forwards += 1
    return img.detach().cpu(), {"steps": steps, "forwards": forwards, "border_loss": border_loss,
                                "border_loss_start": border_start}


def stitch_track(
    G: Generator, w_edit: np.ndarray, crops: np.ndarray, border: np.ndarray, content: np.ndarray,
    cfg: StitchingConfig, device: str | torch.device = "cpu", progress: bool = True,
    frames: np.ndarray | None = None, out: np.ndarray | None = None,
) -> tuple[np.ndarray, list[dict]]:
    """Stitch the frames ``frames`` (default: all) of one face track -> edited crops (T, R, R, 3) uint8 and their
    per-frame stats. ``border`` / ``content``: (T, R, R) masks, float in [0, 1] or uint8 0..255 (made float one
    frame at a time: a 1024 px track's float masks would be 4 MB per frame each). ``out``: the array that receives
    frame i's stitched crop at ``out[i]`` (default: a new one, zero where not stitched); it may be ``crops`` itself
    (frame i is read before it is overwritten), so that a 1024 px shard is not held twice."""
    assert len(w_edit) == len(crops) == len(border) == len(content)
    frames = np.arange(len(crops)) if frames is None else np.asarray(frames, int)
    out = np.zeros(crops.shape, np.uint8) if out is None else out
    assert out.shape == crops.shape, (out.shape, crops.shape)
    stats = []
    tuning = Tuning(G, cfg, device) if cfg.warm_start and len(frames) and cfg.max_steps > 0 else None
    for i in tqdm(frames, desc="stitching", disable=not progress):
        img, st = stitch_frame(
            G, torch.as_tensor(w_edit[i : i + 1], dtype=torch.float32), crops_to_tensor(crops[i : i + 1]),
            _mask_tensor(border[i]), _mask_tensor(content[i]), cfg, device, tuning,
        )
        out[i] = tensor_to_crops(img)[0]
        stats.append(st)
    return out, stats


def _mask_tensor(mask: np.ndarray) -> torch.Tensor:
    """(R, R) mask -> (1, 1, R, R) float in [0, 1] (uint8 masks are 0..255)."""
    m = torch.as_tensor(mask, dtype=torch.float32)
    return (m / 255.0 if mask.dtype == np.uint8 else m)[None, None]


def run(generators, latents_npy, crops_npz, masks_npz, settings: dict, out_npz, device="cpu",
        envelope_json=None, shard: int = 0, shard_frames: int | None = None) -> None:
    """Stage ``stitching``, one shard (``crops_npz``, ``masks_npz``: that shard's files; ``latents_npy``: the whole
    video's edited latents): stitched edited crops (F, T, R, R, 3) of every face track. ``envelope_json`` (the edit
    stage's envelope): frames outside the edit's time range are not tuned; they keep the source crop (the paste
    stage copies those frames from the source anyway). With ``warm_start`` the tuning carries over from frame to
    frame within the shard; each shard starts from the PTI generator."""
    from stitch.edit_range import load_active
    from stitch.models.native import load_bundle
    from stitch.shards import shard_of
    from stitch.latents import Latents
    from stitch.stagefiles import Crops, FaceCrops, Masks

    gens = load_bundle(generators, device)
    data, m = Crops.load(crops_npz), Masks.load(masks_npz, ("border_mask", "content_mask"))
    crops, valid = data.crops, data.valid
    w_edit = Latents.load_shard(latents_npy, shard, shard_frames, valid.shape[1]).latents
    cfg = StitchingConfig.from_settings(settings)
    active = np.ones(valid.shape[1], bool)
    if envelope_json is not None:
        active = shard_of(load_active(envelope_json)[None], shard, shard_frames, valid.shape[1], envelope_json)[0]
    all_stats = {}
    for f in range(valid.shape[0]):  # in place: the crops not tuned (no face, outside the edit) stay the source's
        tuned = np.flatnonzero(valid[f] & active)
        _, all_stats[f"face{f}"] = stitch_track(gens[f"face{f}"], w_edit[f], crops[f], m["border_mask"][f],
                                                m["content_mask"][f], cfg, device, frames=tuned, out=crops[f])
    all_stats["work"] = work_of(s for face in all_stats.values() for s in face)
    FaceCrops(crops, valid, all_stats).save(out_npz)
