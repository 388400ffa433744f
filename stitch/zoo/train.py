"""Demo-pack training: the StyleGAN2 generator and the e4e encoder trained jointly as an encoder-decoder.

Why an encoder-decoder and not a GAN from scratch: the whole pack must train in <= 3 h on 2 CPU cores. A
measured experiment here (DESIGN.md) got 24 dB held-out PSNR in 40 min with L1 + MSE reconstruction, and
identity comes from PTI per video anyway; a GAN would not converge in that budget. The generator keeps
StyleGAN2's architecture (modulated convs, noise, ToRGB skips), so PTI, editing and stitching work unchanged.
A shorter adversarial phase (``stitch.zoo.adversarial``) then fine-tunes the result against a discriminator.

Resumable: a checkpoint (models, optimiser, step, RNG) is written atomically every ``ckpt_minutes``;
rerunning the same command continues from it. The learning-rate schedule depends on the step only, so a
resumed run follows the same schedule as an uninterrupted one.
"""

from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from stitch.atomic import atomic_path, write_json
from stitch.models import Encoder4Editing, EncoderConfig, Generator, GeneratorConfig
from stitch.models.native import save_model
from stitch.tensors import crops_to_tensor

log = logging.getLogger(__name__)

DEMO_GENERATOR = GeneratorConfig(
    z_dim=128, w_dim=128, img_resolution=64, mapping_layers=4, channel_base=2048, channel_max=128
)
DEMO_ENCODER = EncoderConfig(
    input_size=64, stage_channels=(16, 32, 64, 128), stage_units=(1, 2, 3, 1), num_ws=10, w_dim=128
)


@dataclass
class ReconRunConfig:
    """What both training phases share: the reconstruction loss weights (L1, MSE, e4e's delta regulariser),
    the checkpoint interval in minutes and the torch thread count."""

    l1_weight: float = 1.0
    mse_weight: float = 1.0
    delta_reg: float = 2e-4
    ckpt_minutes: float = 4.0
    threads: int = 2


@dataclass
class TrainConfig(ReconRunConfig):
    """Rule ``zoo_train`` (config ``zoo.train``): steps and batch size, Adam's learning rate (cosine schedule down to
    ``lr_final_frac`` of it), seed, held-out evaluation interval and the demo pack's architecture."""

    steps: int = 5000
    batch: int = 32
    lr: float = 1e-3
    lr_final_frac: float = 0.05
    seed: int = 0
    eval_every: int = 500
    generator: dict = field(default_factory=DEMO_GENERATOR.to_dict)
    encoder: dict = field(default_factory=DEMO_ENCODER.to_dict)


def to_tensor(crops_uint8: np.ndarray) -> torch.Tensor:
    """(N, H, W, 3) uint8 -> (N, 3, H, W) float in [-1, 1], stored contiguously (NCHW).

    Not the channels-last strides that permuting an NHWC array gives: with those, torch 2.13's CPU backward of a
    1x1 stride-2 convolution over 3 or 4 channels (the encoder's shortcut at tiny widths) corrupts the heap and
    aborts the process (tests/test_zoo_train.py::test_faces_train_in_the_standard_layout).
    """
    return crops_to_tensor(crops_uint8).contiguous()


def psnr_batch(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """PSNR in dB of images in [-1, 1] (data range 2), one value per image."""
    mse = (a.clamp(-1, 1) - b).square().flatten(1).mean(1)
    return 10 * torch.log10(4.0 / mse.clamp_min(1e-12))


def load_split(data_path: str | Path) -> tuple[torch.Tensor, torch.Tensor]:
    """zoo_data's npz -> (training faces, held-out faces) as tensors in [-1, 1]."""
    data = np.load(data_path)
    crops, holdout = data["crops"], data["holdout"]
    return to_tensor(crops[~holdout]), to_tensor(crops[holdout])


def flip_batch(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Mirror a random half of the batch (horizontal flip augmentation)."""
    flip = torch.rand(len(x), generator=gen) < 0.5
    return torch.where(flip[:, None, None, None], x.flip(3), x)


def recon_loss(y: torch.Tensor, x: torch.Tensor, ws: torch.Tensor, cfg: ReconRunConfig) -> torch.Tensor:
    """L1 + MSE reconstruction + e4e's delta regulariser (weights from ``cfg``)."""
    loss = cfg.l1_weight * (y - x).abs().mean() + cfg.mse_weight * (y - x).square().mean()
    return loss + cfg.delta_reg * delta_penalty(ws)


def lr_at(step: int, cfg: TrainConfig) -> float:
    t = min(step / max(cfg.steps, 1), 1.0)
    return cfg.lr * (cfg.lr_final_frac + (1 - cfg.lr_final_frac) * 0.5 * (1 + math.cos(math.pi * t)))


def delta_penalty(ws: torch.Tensor) -> torch.Tensor:
    """e4e's delta regulariser: keeps the W+ codes near a single W so one edit row moves every layer alike."""
    return (ws[:, 1:] - ws[:, :1]).square().sum(-1).mean()


def evaluate(G: Generator, E: Encoder4Editing, held: torch.Tensor, batch: int = 100) -> float:
    E.eval()
    with torch.no_grad():
        vals = [psnr_batch(G.synthesis(E(x)), x) for x in held.split(batch)]
    E.train()
    return float(torch.cat(vals).mean())


def train(data_path: str | Path, work_dir: str | Path, cfg: TrainConfig) -> dict:
    """Train (or resume) and write ``work_dir/final/{generator,encoder}.safetensors`` + metrics JSON."""
    torch.set_num_threads(cfg.threads)
    work_dir = Path(work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    ckpt_path = work_dir / "ckpt.pt"
    train_x, held_x = load_split(data_path)
    assert train_x.shape[-1] == cfg.generator["img_resolution"] == cfg.encoder["input_size"]
    torch.manual_seed(cfg.seed)
    G = Generator(GeneratorConfig.from_dict(cfg.generator))
    E = Encoder4Editing(EncoderConfig.from_dict(cfg.encoder))
    params = list(G.synthesis.parameters()) + list(E.parameters())
    opt = torch.optim.Adam(params, lr=cfg.lr, betas=(0.9, 0.99))
    step, history = 0, []
    gen = torch.Generator().manual_seed(cfg.seed)
    if ckpt_path.is_file():
        ck = torch.load(ckpt_path, map_location="cpu", weights_only=True)
        G.load_state_dict(ck["G"])
        E.load_state_dict(ck["E"])
        opt.load_state_dict(ck["opt"])
        step, history = int(ck["step"]), json.loads(ck["history"])
        gen.set_state(ck["rng"])
        log.info("resumed from %s at step %d", ckpt_path, step)

    def save_ckpt() -> None:
        save_checkpoint(ckpt_path, {"G": G.state_dict(), "E": E.state_dict(), "opt": opt.state_dict(), "step": step,
                                    "history": json.dumps(history), "rng": gen.get_state()})

    last_ckpt = time.time()
    t0, imgs = time.time(), 0
    bar = tqdm(total=cfg.steps, initial=step, desc="train demo pack", mininterval=30.0)
    while step < cfg.steps:
        idx = torch.randint(len(train_x), (cfg.batch,), generator=gen)
        x = flip_batch(train_x[idx], gen)
        for group in opt.param_groups:
            group["lr"] = lr_at(step, cfg)
        ws = E(x)
        y = G.synthesis(ws)
        loss = recon_loss(y, x, ws, cfg)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        step += 1
        imgs += cfg.batch
        bar.update(1)
        if step % 50 == 0:
            bar.set_postfix(loss=f"{loss.item():.4f}", ips=f"{imgs / (time.time() - t0):.1f}")
        if step % cfg.eval_every == 0 or step == cfg.steps:
            p = evaluate(G, E, held_x)
            history.append({"step": step, "heldout_psnr": p, "loss": float(loss.detach()), "time": time.time()})
            log.info("step %d loss %.4f held-out PSNR %.2f dB (%.1f img/s)", step, loss.item(), p, imgs / (time.time() - t0))
        if time.time() - last_ckpt > cfg.ckpt_minutes * 60:
            save_ckpt()
            last_ckpt = time.time()
    bar.close()
    return finish(save_ckpt, G, E, train_x, held_x, work_dir / "final", step, history, {"train": asdict(cfg)})


def finish(save_ckpt, G: Generator, E: Encoder4Editing, train_x: torch.Tensor, held_x: torch.Tensor, final: Path,
           step: int, history: list, extra: dict) -> dict:
    """End of a training phase: last checkpoint, held-out PSNR, final models + metrics (see :func:`save_final`)."""
    save_ckpt()
    metrics = {"steps": step, "heldout_psnr": evaluate(G, E, held_x), "history": history}
    save_final(G, E, train_x, final, extra, metrics)
    return metrics


def save_checkpoint(path: Path, state: dict) -> None:
    """Write a training checkpoint atomically (a crash mid-write leaves the previous one)."""
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def save_final(G: Generator, E: Encoder4Editing, train_x: torch.Tensor, final: Path, extra: dict, metrics: dict) -> None:
    """Set ``w_avg`` and write ``final/{generator,encoder}.safetensors`` + ``train_metrics.json``.

    ``w_avg`` of the demo generator = mean encoded code of the training faces (its mapping is not trained).
    """
    E.eval()
    with torch.no_grad():
        codes = torch.cat([E(x) for x in train_x[:2000].split(200)])
    G.mapping.w_avg.copy_(codes.mean(dim=(0, 1)))
    save_model(G, final / "generator.safetensors", extra=extra)
    save_model(E, final / "encoder.safetensors", extra=extra)
    write_json(final / "train_metrics.json", metrics)
