"""Demo-pack adversarial phase: fine-tune the trained encoder-decoder against a discriminator.

Why: the reconstruction-only phase (``stitch.zoo.train``) regresses every face towards the blurry mean. A
generator-independent probe reads its reconstructions of held-out faces ~13 years younger than the sources,
the age edit has no wrinkles to draw, and PTI must carry age in its weights. This phase keeps the
reconstruction loss and adds a non-saturating GAN loss (StyleGAN2's, with lazy R1) on

- the reconstructions ``G(E(x))`` — sharper, more faithful texture, and
- renders of codes interpolated between two encoded faces — so codes between and beyond the encoded ones,
  which is where edits go, also render as faces.

Starts from zoo_train's final weights with fresh optimisers, so a resumed or split run equals an uninterrupted
one. Resumable: checkpoint (G, E, D, optimisers, step, RNG) written atomically every ``ckpt_minutes``.
"""

from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F
from tqdm import tqdm

from stitch.models.native import load_native
from stitch.zoo.train import (
    ReconRunConfig,
    evaluate,
    finish,
    flip_batch,
    load_split,
    recon_loss,
    save_checkpoint,
)

log = logging.getLogger(__name__)


@dataclass
class DiscriminatorConfig:
    """Constructor arguments of :class:`Discriminator`.

    resolution: input size (power of two >= 8). channels: feature maps per block, from the input resolution
    down to 8 px (one block halves the size); the last block's output goes through a minibatch-stddev channel,
    a 3x3 conv at 4 px and a linear head.
    """

    resolution: int = 64
    channels: tuple[int, ...] = (32, 64, 128, 128)

    def __post_init__(self) -> None:
        self.channels = tuple(int(c) for c in self.channels)
        if 4 * 2 ** len(self.channels) != self.resolution:
            raise ValueError(f"{len(self.channels)} blocks take {4 * 2 ** len(self.channels)} px to 4 px, "
                             f"not {self.resolution} px")


class _DownBlock(nn.Module):
    """Residual block: two 3x3 convs (leaky ReLU), average-pool down; skip = 1x1 conv of the pooled input."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cin, 3, padding=1)
        self.conv2 = nn.Conv2d(cin, cout, 3, padding=1)
        self.skip = nn.Conv2d(cin, cout, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.leaky_relu(self.conv1(x), 0.2)
        h = F.avg_pool2d(F.leaky_relu(self.conv2(h), 0.2), 2)
        return (h + self.skip(F.avg_pool2d(x, 2))) / math.sqrt(2)


class Discriminator(nn.Module):
    """Small ResNet discriminator (StyleGAN2-like: residual blocks, minibatch stddev, linear head); logits (N,)."""

    def __init__(self, cfg: DiscriminatorConfig) -> None:
        super().__init__()
        self.cfg = cfg
        c = cfg.channels
        self.from_rgb = nn.Conv2d(3, c[0], 1)
        self.blocks = nn.ModuleList(_DownBlock(a, b) for a, b in zip(c, c[1:] + (c[-1],)))
        self.conv = nn.Conv2d(c[-1] + 1, c[-1], 3, padding=1)
        self.fc = nn.Linear(c[-1] * 16, c[-1])
        self.out = nn.Linear(c[-1], 1)

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        assert img.ndim == 4 and img.shape[1:] == (3, self.cfg.resolution, self.cfg.resolution), img.shape
        x = F.leaky_relu(self.from_rgb(img), 0.2)
        for block in self.blocks:
            x = block(x)
        group = math.gcd(4, len(x))  # minibatch stddev over groups of samples i, i + N/group, ...
        std = x.reshape(group, -1, *x.shape[1:]).std(0, unbiased=False).mean(dim=(1, 2, 3)).repeat(group)
        x = torch.cat([x, std[:, None, None, None].expand(-1, 1, *x.shape[2:])], dim=1)
        x = F.leaky_relu(self.conv(x), 0.2)
        x = F.leaky_relu(self.fc(x.flatten(1)), 0.2)
        return self.out(x).squeeze(1)


@dataclass
class AdversarialConfig(ReconRunConfig):
    """Rule ``zoo_adversarial`` (config ``zoo.adversarial``): hyperparameters of the adversarial phase.

    adv_weight: weight of the generator's GAN loss next to the L1 + MSE reconstruction (weights as zoo_train).
    mix_share: fraction of each batch also rendered from codes interpolated between two encoded faces, with
    ``alpha ~ U(-mix_extra, 1 + mix_extra)`` (a little extrapolation, as edits go past the encoded codes).
    r1_gamma / r1_every: lazy R1 penalty on real images. Adam betas (0, 0.99) as StyleGAN2. Reconstruction
    weights, checkpoint interval and threads: :class:`stitch.zoo.train.ReconRunConfig`.
    """

    steps: int = 2400
    batch: int = 16
    lr: float = 2e-4
    lr_d: float = 2e-4
    adv_weight: float = 0.1
    mix_share: float = 0.5
    mix_extra: float = 0.25
    r1_gamma: float = 1.0
    r1_every: int = 16
    seed: int = 1
    eval_every: int = 250
    discriminator: tuple[int, ...] = DiscriminatorConfig.channels


def mix_codes(ws: torch.Tensor, n: int, extra: float, gen: torch.Generator) -> torch.Tensor:
    """``n`` codes on lines between encoded codes and those of a shuffled partner (detached)."""
    ws = ws.detach()[:n]
    partner = ws.roll(1, dims=0)
    alpha = torch.rand(n, 1, 1, generator=gen) * (1 + 2 * extra) - extra
    return ws + alpha * (partner - ws)


def r1_penalty(D: Discriminator, real: torch.Tensor) -> torch.Tensor:
    real = real.detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(D(real).sum(), real, create_graph=True)
    return grad.square().sum(dim=(1, 2, 3)).mean()


def train_adversarial(data_path: str | Path, generator: str | Path, encoder: str | Path, work_dir: str | Path,
                      cfg: AdversarialConfig) -> dict:
    """Fine-tune (or resume) and write ``work_dir/final/{generator,encoder}.safetensors`` + metrics JSON."""
    torch.set_num_threads(cfg.threads)
    work_dir = Path(work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    ckpt_path = work_dir / "ckpt.pt"
    train_x, held_x = load_split(data_path)
    torch.manual_seed(cfg.seed)
    G = load_native(generator, kind="generator").requires_grad_(True).train()
    E = load_native(encoder, kind="encoder").requires_grad_(True).train()
    G.mapping.requires_grad_(False)
    assert train_x.shape[-1] == G.cfg.img_resolution == E.cfg.input_size
    D = Discriminator(DiscriminatorConfig(resolution=G.cfg.img_resolution, channels=cfg.discriminator))
    opt_g = torch.optim.Adam(list(G.synthesis.parameters()) + list(E.parameters()), lr=cfg.lr, betas=(0.0, 0.99))
    opt_d = torch.optim.Adam(D.parameters(), lr=cfg.lr_d, betas=(0.0, 0.99))
    gen = torch.Generator().manual_seed(cfg.seed)
    step, history = 0, []
    if ckpt_path.is_file():
        ck = torch.load(ckpt_path, map_location="cpu", weights_only=True)
        for module, key in ((G, "G"), (E, "E"), (D, "D"), (opt_g, "opt_g"), (opt_d, "opt_d")):
            module.load_state_dict(ck[key])
        step, history = int(ck["step"]), json.loads(ck["history"])
        gen.set_state(ck["rng"])
        log.info("resumed from %s at step %d", ckpt_path, step)
    else:
        history.append({"step": 0, "heldout_psnr": evaluate(G, E, held_x), "time": time.time()})
    log.info("adversarial phase: start held-out PSNR %.2f dB, D %.2f M parameters", history[0]["heldout_psnr"],
             sum(p.numel() for p in D.parameters()) / 1e6)

    def save_ckpt() -> None:
        save_checkpoint(ckpt_path, {"G": G.state_dict(), "E": E.state_dict(), "D": D.state_dict(),
                                    "opt_g": opt_g.state_dict(), "opt_d": opt_d.state_dict(), "step": step,
                                    "history": json.dumps(history), "rng": gen.get_state()})

    n_mix = int(round(cfg.batch * cfg.mix_share))
    last_ckpt, t0, done = time.time(), time.time(), 0
    bar = tqdm(total=cfg.steps, initial=step, desc="adversarial phase", mininterval=30.0)
    while step < cfg.steps:
        x = flip_batch(train_x[torch.randint(len(train_x), (cfg.batch,), generator=gen)], gen)
        # generator + encoder step
        D.requires_grad_(False)
        ws = E(x)
        y = G.synthesis(ws)
        fakes = torch.cat([y, G.synthesis(mix_codes(ws, n_mix, cfg.mix_extra, gen))]) if n_mix else y
        rec = recon_loss(y, x, ws, cfg)
        adv = F.softplus(-D(fakes)).mean()
        opt_g.zero_grad(set_to_none=True)
        (rec + cfg.adv_weight * adv).backward()
        opt_g.step()
        # discriminator step
        D.requires_grad_(True)
        d_loss = F.softplus(D(fakes.detach())).mean() + F.softplus(-D(x)).mean()
        if step % cfg.r1_every == 0:
            d_loss = d_loss + cfg.r1_gamma / 2 * cfg.r1_every * r1_penalty(D, x)
        opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        opt_d.step()
        step += 1
        done += 1
        bar.update(1)
        if step % 25 == 0:
            bar.set_postfix(rec=f"{rec.item():.4f}", adv=f"{adv.item():.3f}", d=f"{d_loss.item():.3f}",
                            s_per_step=f"{(time.time() - t0) / done:.2f}")
        if step % cfg.eval_every == 0 or step == cfg.steps:
            p = evaluate(G, E, held_x)
            history.append({"step": step, "heldout_psnr": p, "rec": rec.item(), "adv": adv.item(),
                            "d_loss": d_loss.item(), "time": time.time()})
            log.info("step %d rec %.4f adv %.3f D %.3f held-out PSNR %.2f dB (%.2f s/step)", step, rec.item(),
                     adv.item(), d_loss.item(), p, (time.time() - t0) / done)
        if time.time() - last_ckpt > cfg.ckpt_minutes * 60:
            save_ckpt()
            last_ckpt = time.time()
    bar.close()
    return finish(save_ckpt, G, E, train_x, held_x, work_dir / "final", step, history, {"adversarial": asdict(cfg)})
