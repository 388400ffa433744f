"""Demo-pack training (stitch.zoo.train) and its adversarial phase (stitch.zoo.adversarial) on tiny models.

Checks that both phases learn what they should, that an interrupted run resumed from its checkpoint ends with
exactly the weights of an uninterrupted one, and the discriminator's shape contract.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

import stitch.zoo.adversarial as zadv
import stitch.zoo.train as ztrain
from stitch.models.e4e import EncoderConfig
from stitch.models.native import load_native
from stitch.models.stylegan2 import GeneratorConfig
from stitch.zoo.adversarial import AdversarialConfig, Discriminator, DiscriminatorConfig, mix_codes

RES = 32
TINY_G = GeneratorConfig(z_dim=16, w_dim=16, img_resolution=RES, mapping_layers=1, channel_base=256, channel_max=16)
TINY_E = EncoderConfig(input_size=RES, stage_channels=(4, 8, 8, 16), stage_units=(1, 1, 1, 1), num_ws=TINY_G.num_ws,
                       w_dim=16, se_reduction=4)


@pytest.fixture(scope="module")
def faces(tmp_path_factory) -> Path:
    """A tiny zoo_data-style npz: smooth 'faces' (a bright ellipse on a gradient, random placement and colour)."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:RES, 0:RES] / (RES - 1)
    crops = []
    for _ in range(40):
        cx, cy, r = rng.uniform(0.35, 0.65), rng.uniform(0.35, 0.65), rng.uniform(0.2, 0.35)
        face = ((xx - cx) ** 2 + ((yy - cy) / 1.3) ** 2 < r**2).astype(float)
        bg = rng.uniform(0, 1, 3)[None, None] * (0.5 + 0.5 * yy[..., None])
        skin = rng.uniform(0.4, 1.0, 3)[None, None]
        crops.append(np.where(face[..., None] > 0, skin, bg))
    crops = (np.stack(crops) * 255).astype(np.uint8)
    holdout = np.zeros(len(crops), bool)
    holdout[-8:] = True
    path = tmp_path_factory.mktemp("zoo") / "faces.npz"
    np.savez(path, crops=crops, holdout=holdout)
    return path


def tiny_train_cfg(**kw) -> ztrain.TrainConfig:
    base = dict(steps=30, batch=8, lr=3e-3, threads=1, eval_every=10, ckpt_minutes=60.0,
                generator=TINY_G.to_dict(), encoder=TINY_E.to_dict())
    return ztrain.TrainConfig(**{**base, **kw})


def tiny_adv_cfg(**kw) -> AdversarialConfig:
    base = dict(steps=6, batch=8, threads=1, eval_every=3, ckpt_minutes=60.0, r1_every=2, discriminator=(8, 16, 16))
    return AdversarialConfig(**{**base, **kw})


@pytest.fixture(scope="module")
def phase1(faces, tmp_path_factory) -> Path:
    work = tmp_path_factory.mktemp("phase1")
    ztrain.train(faces, work, tiny_train_cfg())
    return work / "final"


def interrupt_after(monkeypatch, module, n_saves: int) -> None:
    """Make ``module.save_checkpoint`` raise right after its ``n_saves``-th checkpoint (a hard stop mid-run)."""
    real, calls = module.save_checkpoint, {"n": 0}

    def save_then_maybe_die(path, state):
        real(path, state)
        calls["n"] += 1
        if calls["n"] == n_saves:
            raise KeyboardInterrupt("simulated kill")

    monkeypatch.setattr(module, "save_checkpoint", save_then_maybe_die)


def assert_same_weights(a: Path, b: Path) -> None:
    for name in ("generator", "encoder"):
        sa = load_native(a / f"{name}.safetensors").state_dict()
        sb = load_native(b / f"{name}.safetensors").state_dict()
        assert sa.keys() == sb.keys()
        for k in sa:
            assert torch.equal(sa[k], sb[k]), f"{name}.{k} differs after resume"


def test_faces_train_in_the_standard_layout(faces):
    """Training tensors are contiguous NCHW, not the channels-last strides of a permuted NHWC array: with those,
    torch 2.13's CPU backward through the tiny encoder's 1x1 stride-2 shortcut corrupts the heap (process abort)."""
    train_x, held_x = ztrain.load_split(faces)
    data = np.load(faces)
    assert train_x.shape == (32, 3, RES, RES) and held_x.shape == (8, 3, RES, RES)
    assert train_x.is_contiguous() and held_x.is_contiguous()
    first = data["crops"][0].transpose(2, 0, 1) / 127.5 - 1
    assert np.allclose(train_x[0].numpy(), first, atol=1e-6)


def test_reconstruction_phase_learns_and_writes_the_final_models(phase1):
    m = ztrain.json.loads((phase1 / "train_metrics.json").read_text())
    first, last = m["history"][0]["heldout_psnr"], m["heldout_psnr"]
    assert m["steps"] == 30 and last > first + 1.0, (first, last)
    g = load_native(phase1 / "generator.safetensors", kind="generator")
    assert g.cfg == TINY_G and torch.isfinite(g.mapping.w_avg).all() and g.mapping.w_avg.abs().sum() > 0


def test_reconstruction_phase_resumes_to_the_same_weights(faces, tmp_path, monkeypatch):
    cfg = tiny_train_cfg(steps=6, ckpt_minutes=0.0)  # checkpoint after every step
    ztrain.train(faces, tmp_path / "straight", cfg)
    interrupt_after(monkeypatch, ztrain, 3)
    with pytest.raises(KeyboardInterrupt):
        ztrain.train(faces, tmp_path / "resumed", cfg)
    monkeypatch.undo()
    assert not (tmp_path / "resumed" / "final").exists()
    ztrain.train(faces, tmp_path / "resumed", cfg)
    assert_same_weights(tmp_path / "straight" / "final", tmp_path / "resumed" / "final")


def test_adversarial_phase_resumes_to_the_same_weights(faces, phase1, tmp_path, monkeypatch):
    cfg = tiny_adv_cfg(ckpt_minutes=0.0)
    args = (faces, phase1 / "generator.safetensors", phase1 / "encoder.safetensors")
    zadv.train_adversarial(*args, tmp_path / "straight", cfg)
    interrupt_after(monkeypatch, zadv, 4)
    with pytest.raises(KeyboardInterrupt):
        zadv.train_adversarial(*args, tmp_path / "resumed", cfg)
    monkeypatch.undo()
    zadv.train_adversarial(*args, tmp_path / "resumed", cfg)
    assert_same_weights(tmp_path / "straight" / "final", tmp_path / "resumed" / "final")
    m = zadv.json.loads((tmp_path / "resumed" / "final" / "train_metrics.json").read_text())
    assert m["steps"] == 6 and [h["step"] for h in m["history"]] == [0, 3, 6]


def test_adversarial_phase_trains_both_players_and_keeps_reconstructing(faces, phase1, tmp_path):
    args = (faces, phase1 / "generator.safetensors", phase1 / "encoder.safetensors")
    m = zadv.train_adversarial(*args, tmp_path / "adv", tiny_adv_cfg(steps=12, eval_every=12))
    g0 = load_native(phase1 / "generator.safetensors").state_dict()
    g1 = load_native(tmp_path / "adv" / "final" / "generator.safetensors").state_dict()
    assert any(not torch.equal(g0[k], g1[k]) for k in g0 if k.startswith("synthesis"))
    assert all(torch.equal(g0[k], g1[k]) for k in g0 if k.startswith("mapping.") and "w_avg" not in k)
    ck = torch.load(tmp_path / "adv" / "ckpt.pt", weights_only=True)
    assert len(ck["opt_d"]["state"]) == len(ck["D"]) - 0 and ck["opt_d"]["state"][0]["step"] == 12  # D stepped each step
    start = m["history"][0]["heldout_psnr"]
    assert m["heldout_psnr"] > start - 3.0, (start, m["heldout_psnr"])  # reconstruction loss still holds it


def test_adv_weight_makes_the_generator_fool_the_discriminator(faces, phase1, tmp_path):
    """adv_weight is really applied: with the discriminator frozen (lr_d 0, so still its random init) a run whose
    loss is all GAN raises D's score of the reconstructions; a GAN-free run does not move it that way."""
    args = (faces, phase1 / "generator.safetensors", phase1 / "encoder.safetensors")
    held = ztrain.load_split(faces)[1]
    score = {}
    for w in (0.0, 1e6):
        work = tmp_path / str(w)
        zadv.train_adversarial(*args, work, tiny_adv_cfg(steps=8, adv_weight=w, lr=3e-3, lr_d=0.0))
        ck = torch.load(work / "ckpt.pt", weights_only=True)
        d = Discriminator(DiscriminatorConfig(resolution=RES, channels=(8, 16, 16)))
        d.load_state_dict(ck["D"])
        g, e = (load_native(work / "final" / f"{n}.safetensors") for n in ("generator", "encoder"))
        with torch.no_grad():
            score[w] = float(d(g.synthesis(e(held))).mean())
    g0, e0 = (load_native(phase1 / f"{n}.safetensors") for n in ("generator", "encoder"))
    with torch.no_grad():
        start = float(d(g0.synthesis(e0(held))).mean())
    assert score[1e6] - start > 3 * abs(score[0.0] - start) and score[1e6] > start, (start, score)


def test_discriminator_contract():
    d = Discriminator(DiscriminatorConfig(resolution=32, channels=(8, 16, 16)))
    for n in (1, 3, 6, 8):  # minibatch stddev groups of gcd(4, n)
        assert d(torch.randn(n, 3, 32, 32)).shape == (n,)
    with pytest.raises(AssertionError):
        d(torch.randn(2, 3, 16, 16))
    with pytest.raises(ValueError, match="px"):
        DiscriminatorConfig(resolution=64, channels=(8, 16))


def test_mix_codes_lie_on_the_lines_between_pairs():
    gen = torch.Generator().manual_seed(0)
    ws = torch.randn(6, 4, 8)
    mixed = mix_codes(ws, 4, 0.25, gen)
    assert mixed.shape == (4, 4, 8) and not mixed.requires_grad
    partner = ws[:4].roll(1, dims=0)
    d, p = mixed - ws[:4], partner - ws[:4]
    alpha = (d * p).sum((1, 2)) / p.square().sum((1, 2))
    torch.testing.assert_close(d, alpha[:, None, None] * p)
    assert ((alpha >= -0.25) & (alpha <= 1.25)).all()


def test_default_discriminator_fits_the_demo_resolution():
    DiscriminatorConfig(resolution=ztrain.DEMO_GENERATOR.img_resolution, channels=AdversarialConfig().discriminator)


def test_r1_penalty_is_the_squared_input_gradient():
    w = torch.randn(1, 3, 4, 4)

    class Linear(torch.nn.Module):
        def forward(self, x):
            return (x * w).sum(dim=(1, 2, 3))

    x = torch.randn(5, 3, 4, 4)
    torch.testing.assert_close(zadv.r1_penalty(Linear(), x), w.square().sum())
