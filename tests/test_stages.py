"""Unit tests of the latent-side stages: edit, PTI, stitching tuning, packs, model bundles."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from stitch.edit import apply_edit, combined_direction
from stitch.errors import StitchError
from stitch.invert import invert_crops
from stitch.models.native import load_bundle, save_bundle
from stitch.packs import Pack, make_random_pack
from stitch.pti import PTIConfig, edit_space, pti_tune
from stitch.stitching import StitchingConfig, Tuning, masked_mse, stitch_frame
from stitch.tensors import crops_to_tensor, render, tensor_to_crops


@pytest.fixture(scope="module")
def tiny_pack(tmp_path_factory) -> Pack:
    return make_random_pack(tmp_path_factory.mktemp("pack"), resolution=32)


def test_edit_is_sum_of_half_factors():
    dirs = {"age": torch.ones(4, 3), "smile": torch.full((4, 3), 2.0)}
    pivots = np.zeros((5, 4, 3), np.float32)
    out = apply_edit(pivots, dirs, {"age": 8, "smile": -1})
    np.testing.assert_allclose(out, np.full((5, 4, 3), 8 / 2 * 1 - 1 / 2 * 2))
    assert pivots.sum() == 0  # pivots never modified
    with pytest.raises(StitchError, match="unknown edit direction"):
        combined_direction(dirs, {"gender": 1})


def test_crop_tensor_round_trip():
    crops = np.random.default_rng(0).integers(0, 256, (3, 8, 8, 3), dtype=np.uint8)
    np.testing.assert_array_equal(tensor_to_crops(crops_to_tensor(crops)), crops)


def _pti_problem(pack):
    """Pivots, crops from a perturbed copy of the generator, and one edit direction."""
    G = pack.generator()
    ws = torch.randn(3, G.num_ws, G.w_dim, generator=torch.Generator().manual_seed(1)).numpy()
    target_G = pack.generator()
    with torch.no_grad():
        for p in target_G.synthesis.parameters():
            p.add_(0.05 * torch.randn_like(p))
    d = torch.randn(G.num_ws, G.w_dim, generator=torch.Generator().manual_seed(2)) * 0.3
    return G, ws, tensor_to_crops(render(target_G, ws)), {"age": d}


def test_pti_improves_reconstruction_and_leaves_input_generator(tiny_pack):
    G, ws, crops, _ = _pti_problem(tiny_pack)
    before = {k: v.clone() for k, v in G.state_dict().items()}
    Gt, stats = pti_tune(G, ws, crops, PTIConfig(epochs=15, lr=3e-3), progress=False)
    assert stats["psnr_after"] > stats["psnr_before_keyframes"] + 1.0, stats
    assert all(torch.equal(before[k], v) for k, v in G.state_dict().items())
    # deterministic on CPU for a fixed seed
    Gt2, stats2 = pti_tune(G, ws, crops, PTIConfig(epochs=15, lr=3e-3), progress=False)
    assert stats2["psnr_after"] == stats["psnr_after"]


def _edit_response_error(G0, Gt, ws, d, factor):
    w = torch.from_numpy(ws)
    change = lambda G: render(G, w + factor / 2 * d[None]) - render(G, w)  # noqa: E731
    return float((change(Gt) - change(G0)).square().mean())


def test_pti_edit_regulariser_keeps_the_edit_response(tiny_pack):
    G, ws, crops, directions = _pti_problem(tiny_pack)
    space = edit_space(directions)
    assert set(space) == {"age"} and space["age"][1] == 8.0
    plain, st_plain = pti_tune(G, ws, crops, PTIConfig(epochs=15, lr=3e-3), progress=False)
    reg, st_reg = pti_tune(G, ws, crops, PTIConfig(epochs=15, lr=3e-3, edit_reg_weight=10.0), progress=False,
                           space=space)
    err_plain = _edit_response_error(G, plain, ws, directions["age"], 8.0)
    err_reg = _edit_response_error(G, reg, ws, directions["age"], 8.0)
    assert err_reg < 0.5 * err_plain, (err_reg, err_plain)
    assert st_reg["psnr_after"] > st_reg["psnr_before_keyframes"] + 1.0, st_reg  # it still fits the frames
    assert st_reg["edit_reg_weight"] == 10.0 and st_plain["edit_reg_weight"] == 0.0
    with pytest.raises(ValueError, match="edit directions"):
        pti_tune(G, ws, crops, PTIConfig(epochs=1, edit_reg_weight=1.0), progress=False)


def test_pti_config_from_workflow_settings():
    base = {"epochs": 4, "lr": 1e-3, "mse_weight": 10, "lpips_weight": 0, "seed": 3}
    assert PTIConfig.from_settings(base) == PTIConfig(epochs=4, lr=1e-3, mse_weight=10.0, lpips_weight=0.0, seed=3)
    assert PTIConfig.from_settings({**base, "edit_reg_weight": 2}).edit_reg_weight == 2.0


def test_masked_mse_uses_only_masked_pixels():
    a, b = torch.zeros(1, 3, 4, 4), torch.zeros(1, 3, 4, 4)
    b[..., :2] = 1.0
    m = torch.zeros(1, 1, 4, 4)
    m[..., 2:] = 1
    assert masked_mse(a, b, m) == 0
    m[..., :1] = 1
    assert torch.isclose(masked_mse(a, b, m), torch.tensor(4 / 12))


def test_stitching_pulls_border_towards_original_and_stops_early(tiny_pack):
    G = tiny_pack.generator()
    r = G.img_resolution
    w = torch.randn(1, G.num_ws, G.w_dim, generator=torch.Generator().manual_seed(2))
    original = torch.zeros(1, 3, r, r)
    border = torch.zeros(1, 1, r, r)
    border[..., :3, :] = 1
    content = torch.zeros(1, 1, r, r)
    content[..., 6:10, 6:10] = 1
    with torch.no_grad():
        start = float(masked_mse(G.synthesis(w), original, border))
    img, st = stitch_frame(G, w, original, border, content, StitchingConfig(max_steps=30, lr=3e-3, border_threshold=0.0))
    assert st["steps"] == 30 and st["border_loss"] < start
    cfg = StitchingConfig(max_steps=30, border_threshold=1e9)
    img2, st2 = stitch_frame(G, w, original, border, content, cfg)
    # early stop from PTI's weights: the untuned render already matches the border and is the result, no copy tuned
    assert st2["steps"] == 0 and st2["forwards"] == 1 and st2["border_loss"] == pytest.approx(start)
    img3, st3 = stitch_frame(G, w, original, border, content, cfg, tuning=Tuning(G, cfg))
    assert st3["steps"] == 0 and st3["forwards"] == 2  # a carried-over tuning is rendered to check its border
    assert torch.equal(img2, img3)  # an untouched tuned copy renders PTI's image to the bit: no copy needed for it


def test_bundle_round_trip_is_bit_exact(tmp_path, tiny_pack):
    G = tiny_pack.generator()
    save_bundle({"face0": G, "face1": G}, tmp_path / "gens.safetensors")
    back = load_bundle(tmp_path / "gens.safetensors")
    for k, v in G.state_dict().items():
        assert torch.equal(back["face1"].state_dict()[k], v)


def test_pack_detects_corrupt_and_missing_files(tmp_path):
    pack = make_random_pack(tmp_path / "p", resolution=32)
    assert pack.directions["age"].shape == (pack.meta["num_ws"], pack.meta["w_dim"])
    f = tmp_path / "p" / "encoder.safetensors"
    data = bytearray(f.read_bytes())
    data[-1] ^= 0xFF
    f.write_bytes(bytes(data))
    with pytest.raises(StitchError, match="encoder.safetensors is corrupt"):
        Pack.open(tmp_path / "p").encoder()
    f.unlink()
    with pytest.raises(StitchError, match="missing .*encoder.safetensors"):
        Pack.open(tmp_path / "p").encoder()
    with pytest.raises(StitchError, match="not found"):
        Pack.open(tmp_path / "nope")


def test_invert_shapes(tiny_pack):
    enc = tiny_pack.encoder()
    crops = np.zeros((3, 48, 48, 3), np.uint8)  # resized to the encoder input
    ws = invert_crops(enc, crops, progress=False)
    assert ws.shape == (3, enc.cfg.num_ws, enc.cfg.w_dim) and ws.dtype == np.float32
