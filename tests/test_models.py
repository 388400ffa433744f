"""Generator / encoder maths and interface.

The reference functions here are written independently from the facts of the public implementations
(rosinality ``stylegan2-pytorch`` ``model.py`` as used as e4e's decoder, NVIDIA StyleGAN2-ADA ``upfirdn2d``
reference semantics, e4e ``Encoder4Editing.forward``) and operate on the *official* parameter layouts, so they
check both our maths and our renaming. ``to_rosinality`` is also used by ``test_checkpoints.py`` to write
rosinality / e4e checkpoints.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from stitch.models.e4e import Encoder4Editing, EncoderConfig
from stitch.models.ops import modulated_conv2d, setup_filter, upfirdn2d
from stitch.models.stylegan2 import Generator, GeneratorConfig, SynthesisLayer, ToRGBLayer

SQRT2 = math.sqrt(2.0)


# ----------------------------------------------------------------------------------------------------------
# Helpers shared with test_checkpoints.py


def randomize_(model: torch.nn.Module, seed: int = 0, fan_in: bool = False) -> torch.nn.Module:
    """Give every parameter (incl. biases, noise strengths) and BN statistic a non-trivial random value.

    ``fan_in``: scale weight tensors by 1/sqrt(fan-in) (plain convs, e.g. the encoder; StyleGAN2's equalised
    layers scale at run time and want unit-variance weights).
    """
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            scale = 0.5 if p.ndim <= 1 else (1 / math.sqrt(p[0].numel()) if fan_in else 1.0)
            p.copy_(torch.randn(p.shape, generator=g) * scale)
        for name, b in model.named_buffers():
            if name.endswith("running_var"):
                b.copy_(torch.rand(b.shape, generator=g) + 0.5)
            elif name.endswith("running_mean"):
                b.copy_(torch.randn(b.shape, generator=g) * 0.1)
            elif name.endswith("w_avg") or name.endswith("latent_avg"):
                b.copy_(torch.randn(b.shape, generator=g))
    return model.eval()


def make_kernel(taps=(1, 3, 3, 1)) -> torch.Tensor:
    k = torch.tensor(taps, dtype=torch.float32)
    k = k[None, :] * k[:, None]
    return k / k.sum()


def to_rosinality(g: Generator) -> dict[str, torch.Tensor]:
    """Our (NVIDIA-layout) generator -> a rosinality ``Generator.state_dict()`` with official names/shapes."""
    sd = {k: v.detach().clone() for k, v in g.state_dict().items()}
    n_mlp = g.cfg.mapping_layers
    out: dict[str, torch.Tensor] = {}
    for i in range(n_mlp):  # style.0 is PixelNorm (no parameters)
        out[f"style.{i + 1}.weight"] = sd[f"mapping.fc{i}.weight"]
        out[f"style.{i + 1}.bias"] = sd[f"mapping.fc{i}.bias"]
    out["input.input"] = sd["synthesis.b4.const"][None]
    resolutions = [2**i for i in range(3, int(math.log2(g.img_resolution)) + 1)]
    noise_idx = 0

    def styled(dst: str, src: str, upsample: bool) -> None:
        nonlocal noise_idx
        out[f"{dst}.conv.weight"] = sd[f"{src}.weight"][None]
        out[f"{dst}.conv.modulation.weight"] = sd[f"{src}.affine.weight"]
        out[f"{dst}.conv.modulation.bias"] = sd[f"{src}.affine.bias"]
        if upsample:
            out[f"{dst}.conv.blur.kernel"] = make_kernel() * 4
        out[f"{dst}.noise.weight"] = sd[f"{src}.noise_strength"].reshape(1)
        out[f"{dst}.activate.bias"] = sd[f"{src}.bias"]
        out[f"noises.noise_{noise_idx}"] = sd[f"{src}.noise_const"][None, None]
        noise_idx += 1

    def torgb(dst: str, src: str, upsample: bool) -> None:
        if upsample:
            out[f"{dst}.upsample.kernel"] = make_kernel() * 4
        out[f"{dst}.conv.weight"] = sd[f"{src}.weight"][None]
        out[f"{dst}.conv.modulation.weight"] = sd[f"{src}.affine.weight"]
        out[f"{dst}.conv.modulation.bias"] = sd[f"{src}.affine.bias"]
        out[f"{dst}.bias"] = sd[f"{src}.bias"].reshape(1, -1, 1, 1)

    styled("conv1", "synthesis.b4.conv1", False)
    torgb("to_rgb1", "synthesis.b4.torgb", False)
    for k, r in enumerate(resolutions):
        styled(f"convs.{2 * k}", f"synthesis.b{r}.conv0", True)
        styled(f"convs.{2 * k + 1}", f"synthesis.b{r}.conv1", False)
        torgb(f"to_rgbs.{k}", f"synthesis.b{r}.torgb", True)
    return out


def _ros_upfirdn(x: torch.Tensor, kernel: torch.Tensor, up: int, pad: tuple[int, int]) -> torch.Tensor:
    """rosinality ``upfirdn2d_native`` semantics (zero insertion, symmetric (pad0, pad1) on both axes)."""
    n, c, h, w = x.shape
    if up > 1:
        z = x.new_zeros(n, c, h * up, w * up)
        z[:, :, ::up, ::up] = x
        x = z
    x = F.pad(x, [pad[0], pad[1], pad[0], pad[1]])
    k = torch.flip(kernel, [0, 1])[None, None].repeat(c, 1, 1, 1)
    return F.conv2d(x, k, groups=c)


def ros_mapping(sd: dict, z: torch.Tensor, lr_mul: float = 0.01) -> torch.Tensor:
    x = z * torch.rsqrt(torch.mean(z**2, dim=1, keepdim=True) + 1e-8)
    i = 1
    while f"style.{i}.weight" in sd:
        w, b = sd[f"style.{i}.weight"], sd[f"style.{i}.bias"]
        x = F.linear(x, w * (lr_mul / math.sqrt(w.shape[1])))
        x = F.leaky_relu(x + b * lr_mul, 0.2) * SQRT2
        i += 1
    return x


def ros_synthesis(sd: dict, latent: torch.Tensor) -> torch.Tensor:
    """rosinality ``Generator.forward(input_is_latent=True, randomize_noise=False)`` on a W+ latent."""
    batch = latent.shape[0]

    def modconv(x, style, pfx, demodulate=True, upsample=False):
        weight0 = sd[f"{pfx}.weight"]  # (1, O, I, k, k)
        _, out_c, in_c, k, _ = weight0.shape
        mw, mb = sd[f"{pfx}.modulation.weight"], sd[f"{pfx}.modulation.bias"]
        s = F.linear(style, mw / math.sqrt(mw.shape[1]), bias=mb).view(batch, 1, in_c, 1, 1)
        weight = (1 / math.sqrt(in_c * k * k)) * weight0 * s
        if demodulate:
            demod = torch.rsqrt(weight.pow(2).sum([2, 3, 4]) + 1e-8)
            weight = weight * demod.view(batch, out_c, 1, 1, 1)
        h, w = x.shape[-2:]
        if upsample:
            weight = weight.transpose(1, 2).reshape(batch * in_c, out_c, k, k)
            out = F.conv_transpose2d(x.reshape(1, batch * in_c, h, w), weight, padding=0, stride=2, groups=batch)
            out = out.view(batch, out_c, *out.shape[-2:])
            p = (4 - 2) - (k - 1)
            return _ros_upfirdn(out, sd[f"{pfx}.blur.kernel"], 1, ((p + 1) // 2 + 1, p // 2 + 1))
        weight = weight.view(batch * out_c, in_c, k, k)
        out = F.conv2d(x.reshape(1, batch * in_c, h, w), weight, padding=k // 2, groups=batch)
        return out.view(batch, out_c, h, w)

    def styled(x, style, pfx, noise, upsample=False):
        out = modconv(x, style, f"{pfx}.conv", upsample=upsample)
        out = out + sd[f"{pfx}.noise.weight"] * noise
        return F.leaky_relu(out + sd[f"{pfx}.activate.bias"].view(1, -1, 1, 1), 0.2) * SQRT2

    def torgb(x, style, pfx, skip=None):
        out = modconv(x, style, f"{pfx}.conv", demodulate=False) + sd[f"{pfx}.bias"]
        if skip is not None:
            kern = sd[f"{pfx}.upsample.kernel"]
            p = kern.shape[0] - 2
            out = out + _ros_upfirdn(skip, kern, 2, ((p + 1) // 2 + 1, p // 2))
        return out

    noise = [sd[f"noises.noise_{i}"] for i in range(sum(k.startswith("noises.") for k in sd))]
    out = sd["input.input"].repeat(batch, 1, 1, 1)
    out = styled(out, latent[:, 0], "conv1", noise[0])
    skip = torgb(out, latent[:, 1], "to_rgb1")
    i, k = 1, 0
    while f"to_rgbs.{k}.conv.weight" in sd:
        out = styled(out, latent[:, i], f"convs.{2 * k}", noise[2 * k + 1], upsample=True)
        out = styled(out, latent[:, i + 1], f"convs.{2 * k + 1}", noise[2 * k + 2])
        skip = torgb(out, latent[:, i + 2], f"to_rgbs.{k}", skip)
        i, k = i + 2, k + 1
    return skip


def ros_expected_keys(size: int, n_mlp: int) -> set[str]:
    """The key set of rosinality ``Generator(size, style_dim, n_mlp).state_dict()``."""
    keys = {f"style.{i}.{p}" for i in range(1, n_mlp + 1) for p in ("weight", "bias")}
    keys |= {"input.input", "to_rgb1.bias"}
    conv = ("conv.weight", "conv.modulation.weight", "conv.modulation.bias", "noise.weight", "activate.bias")
    rgb = ("conv.weight", "conv.modulation.weight", "conv.modulation.bias", "bias")
    keys |= {f"conv1.{p}" for p in conv} | {f"to_rgb1.{p}" for p in rgb}
    log_size = int(math.log2(size))
    for k in range(log_size - 2):
        keys |= {f"convs.{2 * k}.{p}" for p in conv} | {f"convs.{2 * k}.conv.blur.kernel"}
        keys |= {f"convs.{2 * k + 1}.{p}" for p in conv}
        keys |= {f"to_rgbs.{k}.{p}" for p in rgb} | {f"to_rgbs.{k}.upsample.kernel"}
    keys |= {f"noises.noise_{i}" for i in range((log_size - 2) * 2 + 1)}
    return keys


TINY = GeneratorConfig(z_dim=32, w_dim=32, img_resolution=16, mapping_layers=2, channel_base=256, channel_max=32)


@pytest.fixture(scope="module")
def tiny_g() -> Generator:
    return randomize_(Generator(TINY), seed=1)


# ----------------------------------------------------------------------------------------------------------
# Generator maths


def test_rosinality_layout_has_the_official_names_and_shapes(tiny_g):
    sd = to_rosinality(tiny_g)
    assert set(sd) == ros_expected_keys(16, 2)
    assert sd["input.input"].shape == (1, 32, 4, 4)
    assert sd["convs.0.conv.weight"].shape == (1, 32, 32, 3, 3)
    assert sd["to_rgbs.1.conv.weight"].shape == (1, 3, 16, 1, 1)
    assert sd["to_rgb1.bias"].shape == (1, 3, 1, 1)
    assert sd["conv1.noise.weight"].shape == (1,)
    assert sd["noises.noise_4"].shape == (1, 1, 16, 16)
    assert sd["convs.2.conv.blur.kernel"].shape == (4, 4)
    # every tensor of our model is used exactly once (w_avg / resample filters have no rosinality twin)
    ours = {k for k in tiny_g.state_dict() if not k.endswith(("resample_filter", "w_avg"))}
    assert sum(v.numel() for v in sd.values() if v.shape != (4, 4)) == sum(
        tiny_g.state_dict()[k].numel() for k in ours
    )


def test_generator_matches_independent_rosinality_reference(tiny_g):
    sd = to_rosinality(tiny_g)
    z = torch.randn(3, 32, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        w_ours = tiny_g.mapping(z)
        w_ref = ros_mapping(sd, z)
        assert (w_ours[:, 0] - w_ref).abs().max() <= 1e-5 * max(1.0, float(w_ref.abs().max()))
        ws = w_ours + 0.3 * torch.randn(w_ours.shape, generator=torch.Generator().manual_seed(4))  # mixed W+
        img = tiny_g.synthesis(ws, noise_mode="const")
        ref = ros_synthesis(sd, ws)
    assert img.shape == ref.shape == (3, 3, 16, 16)
    scale = max(1.0, float(ref.abs().max()))
    assert (img - ref).abs().max() <= 1e-5 * scale, float((img - ref).abs().max())


def _naive_upfirdn(x: np.ndarray, f: np.ndarray, up: int, pad: tuple[int, int, int, int], gain: float) -> np.ndarray:
    """Literal loops: zero-insert, pad/crop, true convolution with f * gain (NVIDIA upfirdn2d semantics)."""
    c, h, w = x.shape
    u = np.zeros((c, h * up, w * up))
    u[:, ::up, ::up] = x
    px0, px1, py0, py1 = pad
    u = np.pad(u, ((0, 0), (max(py0, 0), max(py1, 0)), (max(px0, 0), max(px1, 0))))
    u = u[:, max(-py0, 0) : u.shape[1] - max(-py1, 0), max(-px0, 0) : u.shape[2] - max(-px1, 0)]
    fh, fw = f.shape
    g = f * gain
    out = np.zeros((c, u.shape[1] - fh + 1, u.shape[2] - fw + 1))
    for i in range(out.shape[1]):
        for j in range(out.shape[2]):
            for a in range(fh):
                for b in range(fw):
                    out[:, i, j] += u[:, i + a, j + b] * g[fh - 1 - a, fw - 1 - b]
    return out


@pytest.mark.parametrize("up,pad", [(1, (1, 2, 2, 1)), (2, (2, 1, 2, 1)), (2, (1, 1, 1, 1)), (1, (-1, 2, 0, -1))])
def test_upfirdn2d_matches_literal_definition(up, pad):
    x = torch.randn(1, 2, 5, 6, generator=torch.Generator().manual_seed(5))
    f = torch.rand(4, 3, generator=torch.Generator().manual_seed(6))  # asymmetric: catches a missing flip
    gain = up * up
    ours = upfirdn2d(x, f, up=up, pad=pad, gain=gain)[0].double().numpy()
    ref = _naive_upfirdn(x[0].double().numpy(), f.double().numpy(), up, pad, gain)
    assert ours.shape == ref.shape
    np.testing.assert_allclose(ours, ref, atol=1e-5)


def test_modulated_conv_matches_fused_grouped_form():
    """Activation-scaling form (ours) == NVIDIA's fused form (per-sample weights, demodulated, grouped conv)."""
    gen = torch.Generator().manual_seed(7)
    n, i, o = 2, 5, 4
    x = torch.randn(n, i, 6, 6, generator=gen)
    w = torch.randn(o, i, 3, 3, generator=gen)
    s = torch.randn(n, i, generator=gen)
    noise = torch.randn(12, 12, generator=gen)
    filt = setup_filter([1, 3, 3, 1])
    for up in (1, 2):
        ww = w[None] * s[:, None, :, None, None]
        ww = ww * (ww.square().sum([2, 3, 4]) + 1e-8).rsqrt()[:, :, None, None, None]
        xr = x.reshape(1, n * i, 6, 6)
        if up == 1:
            ref = F.conv2d(xr, ww.reshape(n * o, i, 3, 3), padding=1, groups=n).reshape(n, o, 6, 6)
            nz = noise[:6, :6]
        else:  # transposed stride-2 conv (weights not flipped), then the [1,3,3,1] FIR with gain 4, pad (1, 1)
            wt = ww.transpose(1, 2).reshape(n * i, o, 3, 3)
            ref = F.conv_transpose2d(xr, wt, stride=2, groups=n).reshape(n, o, 13, 13)
            ref = upfirdn2d(ref, filt, pad=(1, 1, 1, 1), gain=4)
            nz = noise
        ours = modulated_conv2d(x, w, s, noise=nz, up=up, padding=1, resample_filter=filt)
        assert ours.shape == (n, o, 6 * up, 6 * up)
        assert (ours - (ref + nz)).abs().max() < 1e-4


def test_conv_clamp_and_gains_follow_bias_act():
    layer = randomize_(SynthesisLayer(4, 4, w_dim=8, resolution=8, conv_clamp=0.25), seed=2)
    rgb = randomize_(ToRGBLayer(4, 3, w_dim=8, conv_clamp=0.25), seed=3)
    x = torch.randn(2, 4, 8, 8) * 10
    w = torch.randn(2, 8)
    with torch.no_grad():
        y = layer(x, w)
        r = rgb(y, w)
        assert y.abs().max() <= 0.25 + 1e-7 and r.abs().max() <= 0.25 + 1e-7
        layer.conv_clamp = None
        y2 = layer(x, w)  # lrelu(x + b) * sqrt(2) with noise const
        styles = layer.affine(w)
        pre = modulated_conv2d(x, layer.weight, styles, noise=layer.noise_const * layer.noise_strength, padding=1)
        assert torch.allclose(y2, F.leaky_relu(pre + layer.bias.view(1, -1, 1, 1), 0.2) * SQRT2, atol=1e-5)


def test_generator_interface(tiny_g):
    g = tiny_g
    assert (g.num_ws, g.w_dim, g.z_dim, g.img_resolution, g.img_channels) == (6, 32, 32, 16, 3)
    assert g.w_avg.shape == (32,) and g.w_avg is g.mapping.w_avg
    z = torch.randn(2, 32)
    with torch.no_grad():
        ws = g.mapping(z)
        assert ws.shape == (2, 6, 32) and torch.equal(ws[:, 0], ws[:, 5])
        assert torch.allclose(g.mapping(z, truncation_psi=0.0), g.w_avg.expand(2, 6, 32))
        half = g.mapping(z, truncation_psi=0.5)
        assert torch.allclose(half, g.w_avg + 0.5 * (ws - g.w_avg), atol=1e-6)
        img = g.synthesis(ws)
        assert img.shape == (2, 3, 16, 16) and img.dtype == torch.float32
        assert torch.equal(g(z), g.synthesis(g.mapping(z)))


def test_generator_is_deterministic_with_const_noise(tiny_g):
    ws = torch.randn(2, 6, 32, generator=torch.Generator().manual_seed(8))
    with torch.no_grad():
        a, b = tiny_g.synthesis(ws, noise_mode="const"), tiny_g.synthesis(ws, noise_mode="const")
        assert torch.equal(a, b)
        none = tiny_g.synthesis(ws, noise_mode="none")
        assert not torch.allclose(a, none)  # noise strengths are non-zero here: const noise is really used
        assert not torch.equal(tiny_g.synthesis(ws, noise_mode="random"), tiny_g.synthesis(ws, noise_mode="random"))
    with pytest.raises(ValueError):
        tiny_g.synthesis(ws, noise_mode="bogus")


def test_demo_generator_config_runs():
    from stitch.zoo.train import DEMO_GENERATOR

    g = Generator(DEMO_GENERATOR).eval()
    with torch.no_grad():
        img = g.synthesis(g.mapping(torch.randn(1, DEMO_GENERATOR.z_dim)))
    assert img.shape == (1, 3, DEMO_GENERATOR.img_resolution, DEMO_GENERATOR.img_resolution)


def test_config_f_layout_matches_nvidia_names():
    """Names/shapes of the official 1024 px config-F G_ema that matter for loading ffhq.pkl by name."""
    cfg = GeneratorConfig()
    with torch.device("meta"):
        g = Generator(cfg)
    sd = g.state_dict()
    assert g.num_ws == 18
    assert sd["mapping.fc7.weight"].shape == (512, 512) and sd["mapping.w_avg"].shape == (512,)
    assert sd["synthesis.b4.const"].shape == (512, 4, 4)
    assert sd["synthesis.b1024.conv0.weight"].shape == (32, 64, 3, 3)
    assert sd["synthesis.b1024.conv1.noise_const"].shape == (1024, 1024)
    assert sd["synthesis.b1024.conv0.noise_strength"].shape == ()
    assert sd["synthesis.b64.torgb.weight"].shape == (3, 512, 1, 1)
    assert sd["synthesis.b128.conv0.affine.weight"].shape == (512, 512)  # affine maps w to the *input* channels
    assert sd["synthesis.b8.resample_filter"].shape == (4, 4)
    assert "synthesis.b4.conv0.weight" not in sd


# ----------------------------------------------------------------------------------------------------------
# Encoder


def e4e_reference(enc: Encoder4Editing, x: torch.Tensor) -> torch.Tensor:
    """e4e ``Encoder4Editing.forward`` (Inference stage) + pSp's ``codes + latent_avg``."""
    cfg = enc.cfg
    ends = np.cumsum(cfg.stage_units) - 1
    x = enc.input_layer(x)
    feats = {}
    for i, unit in enumerate(enc.body):
        x = unit(x)
        feats[i] = x
    c1, c2, c3 = feats[ends[1]], feats[ends[2]], feats[ends[3]]
    w0 = enc.styles[0](c3)
    w = w0.repeat(cfg.num_ws, 1, 1).permute(1, 0, 2).clone()
    features = c3
    for i in range(1, cfg.num_ws):
        if i == cfg.coarse_ind:
            y = enc.latlayer1(c2)
            p2 = F.interpolate(c3, size=y.shape[-2:], mode="bilinear", align_corners=True) + y
            features = p2
        elif i == cfg.middle_ind:
            y = enc.latlayer2(c1)
            features = F.interpolate(p2, size=y.shape[-2:], mode="bilinear", align_corners=True) + y
        w[:, i] += enc.styles[i](features)
    return w + enc.latent_avg.repeat(x.shape[0], 1, 1)


TINY_ENC = EncoderConfig(input_size=64, stage_channels=(16, 32, 48, 64), stage_units=(1, 2, 2, 1), num_ws=8, w_dim=64)


def test_encoder_output_and_latent_avg():
    enc = randomize_(Encoder4Editing(TINY_ENC), seed=4, fan_in=True)
    x = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(9)) * 2 - 1
    with torch.no_grad():
        codes = enc(x)
        assert codes.shape == (2, 8, 64)
        assert (codes - e4e_reference(enc, x)).abs().max() < 1e-4
        avg = enc.latent_avg.clone()
        enc.latent_avg.zero_()
        try:
            assert torch.allclose(codes - enc(x), avg.expand(2, 8, 64), atol=1e-5)
        finally:
            enc.latent_avg.copy_(avg)
    with pytest.raises(AssertionError):
        enc(torch.zeros(1, 3, 32, 32))


def test_encoder_has_official_e4e_names_and_shapes():
    with torch.device("meta"):
        enc = Encoder4Editing(EncoderConfig())
    sd = enc.state_dict()
    assert len(enc.body) == 24 and len(enc.styles) == 18
    expect = {
        "input_layer.0.weight": (64, 3, 3, 3),
        "input_layer.1.running_var": (64,),
        "input_layer.2.weight": (64,),
        "body.0.res_layer.0.weight": (64,),
        "body.0.res_layer.1.weight": (64, 64, 3, 3),
        "body.0.res_layer.2.weight": (64,),
        "body.3.shortcut_layer.0.weight": (128, 64, 1, 1),
        "body.3.shortcut_layer.1.num_batches_tracked": (),
        "body.21.shortcut_layer.0.weight": (512, 256, 1, 1),
        "body.23.res_layer.5.fc1.weight": (32, 512, 1, 1),
        "body.23.res_layer.5.fc2.weight": (512, 32, 1, 1),
        "styles.0.convs.6.weight": (512, 512, 3, 3),
        "styles.3.convs.8.bias": (512,),
        "styles.17.convs.10.weight": (512, 512, 3, 3),
        "styles.17.linear.weight": (512, 512),
        "latlayer1.weight": (512, 256, 1, 1),
        "latlayer2.weight": (512, 128, 1, 1),
        "latent_avg": (18, 512),
    }
    for k, shape in expect.items():
        assert tuple(sd[k].shape) == shape, k
    # coarse heads pool 16 -> 1 (4 convs), middle 32 (5), fine 64 (6); stride-1 units have a MaxPool shortcut
    assert "styles.0.convs.8.weight" not in sd and "styles.3.convs.10.weight" not in sd
    assert "styles.7.convs.10.weight" in sd and "styles.17.convs.12.weight" not in sd
    assert not any(k.startswith("body.0.shortcut_layer.") for k in sd)
    assert not any(k.startswith("body.4.shortcut_layer.") for k in sd)
