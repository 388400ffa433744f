"""PTI's optimiser options of the ``fast`` schedule (issue #13): the running average of the weights (``ema``),
frozen low-resolution blocks (``freeze_below``), Adam's ``beta2``, and the fused Adam every tuning stage uses."""

from __future__ import annotations

import copy

import numpy as np
import torch
from conftest import pivot_frames

from stitch.configs import PTIConfig
from stitch.pti import _Tuner, pti_tune
from stitch.pti_frames import ArrayFrames
from stitch.tensors import adam


def _tuned(tuner) -> list[torch.Tensor]:
    return [p.detach().clone() for p in tuner.params]


def test_ema_result_is_the_running_average_of_the_weights(G):
    """With ema d the tuned generator is a <- d a + (1 - d) p after every update, from the pack's weights; without
    it, the last weights."""
    ws, crops = pivot_frames(G, 3)
    frames = ArrayFrames(ws, crops)
    d = 0.6
    tuner = _Tuner(G, frames, PTIConfig(lr=1e-2, ema=d), None, "cpu", None, np.random.default_rng(0))
    average = _tuned(tuner)
    for i in range(3):
        tuner.step(np.array([i]))
        average = [d * a + (1 - d) * p for a, p in zip(average, _tuned(tuner))]
    last = _tuned(tuner)
    tuner.result()  # writes the average into the tuned weights
    got = _tuned(tuner)
    assert all(torch.allclose(a, g, atol=1e-6) for a, g in zip(average, got))
    assert any((a - q).abs().max() > 1e-4 for a, q in zip(average, last))  # the average is not the last weights
    plain = _Tuner(G, frames, PTIConfig(lr=1e-2), None, "cpu", None, np.random.default_rng(0))
    for i in range(3):
        plain.step(np.array([i]))
    assert all(torch.equal(a, b) for a, b in zip(_tuned(plain), [p.detach() for p in plain.result().synthesis.parameters()]))


def test_frozen_blocks_keep_the_pack_weights_and_get_no_gradient(G):
    ws, crops = pivot_frames(G, 4)
    Gt, st = pti_tune(G, ws, crops, PTIConfig(epochs=2, lr=1e-2, freeze_below=16), progress=False)
    for res in G.synthesis.block_resolutions:
        a, b = (dict(g.synthesis.named_parameters()) for g in (G, Gt))
        same = all(torch.equal(a[k], b[k]) for k in a if k.startswith(f"b{res}."))
        assert same == (res < 16), res
    assert st["steps"] == 8
    tuner = _Tuner(G, ArrayFrames(ws, crops), PTIConfig(freeze_below=16), None, "cpu", None, np.random.default_rng(0))
    tuner.step(np.array([0]))
    assert all(p.grad is None for p in tuner.Gt.synthesis.b8.parameters())
    assert len(tuner.params) < len(list(G.synthesis.parameters()))


def test_beta2_reaches_adam(G):
    ws, crops = pivot_frames(G, 1)
    tuner = _Tuner(G, ArrayFrames(ws, crops), PTIConfig(beta2=0.99), None, "cpu", None, np.random.default_rng(0))
    assert tuner.opt.param_groups[0]["betas"] == (0.9, 0.99)


def test_fused_adam_updates_as_the_plain_loop(G):
    """stitch.tensors.adam uses the fused kernel on CPU; its update is Adam's, as torch's per-tensor loop computes it."""
    a, b = (copy.deepcopy(G.synthesis).requires_grad_(True) for _ in range(2))
    fused = adam(a.parameters(), lr=1e-2, betas=(0.9, 0.99))
    loop = torch.optim.Adam(b.parameters(), lr=1e-2, betas=(0.9, 0.99), foreach=False)
    assert fused.defaults["fused"] and not loop.defaults.get("fused")
    ws = torch.from_numpy(pivot_frames(G, 1)[0])
    for _ in range(3):
        for net, opt in ((a, fused), (b, loop)):
            opt.zero_grad()
            net(ws).square().mean().backward()
            opt.step()
    for p, q in zip(a.parameters(), b.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6)
