"""StyleGAN2 generator (config-F family) in pure PyTorch.

Parameter and buffer names equal NVIDIA StyleGAN2-ADA's ``G_ema`` state dict (``mapping.fc0.weight``,
``synthesis.b4.conv1.affine.weight``, ``synthesis.b8.torgb.bias``, ...), so official weights load by name;
rosinality checkpoints are renamed onto the same layout by :mod:`stitch.models.rosinality`.
One class serves the 1024 px FFHQ model and the small demo model through its constructor arguments.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn as nn

from stitch.models.ops import (
    bias_act,
    modulated_conv2d,
    normalize_2nd_moment,
    setup_filter,
    upsample2d,
)

NOISE_MODES = ("const", "random", "none")


@dataclass(frozen=True)
class GeneratorConfig:
    """Constructor arguments of :class:`Generator`; saved as JSON beside the weights.

    z_dim / w_dim: latent sizes. img_resolution: output size (power of two >= 4). mapping_layers: depth of the
    mapping MLP; mapping_lr_mul: its learning-rate multiplier (equalised lr). channel_base / channel_max:
    feature maps at resolution r are ``min(channel_base // r, channel_max)`` (32768 / 512 = config-F).
    conv_clamp: clamp of conv outputs (NVIDIA ADA-trained models use 256; converted TF models None).
    w_avg_beta: EMA decay for ``w_avg`` during training.
    """

    z_dim: int = 512
    w_dim: int = 512
    img_resolution: int = 1024
    img_channels: int = 3
    mapping_layers: int = 8
    mapping_lr_mul: float = 0.01
    channel_base: int = 32768
    channel_max: int = 512
    conv_clamp: float | None = None
    w_avg_beta: float = 0.995
    resample_taps: tuple[int, ...] = (1, 3, 3, 1)

    def __post_init__(self) -> None:
        log2 = math.log2(self.img_resolution)
        if self.img_resolution < 4 or log2 != int(log2):
            raise ValueError(f"img_resolution must be a power of two >= 4, got {self.img_resolution}")

    @property
    def num_ws(self) -> int:
        return 2 * int(math.log2(self.img_resolution)) - 2

    def channels(self, res: int) -> int:
        return min(self.channel_base // res, self.channel_max)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["resample_taps"] = list(self.resample_taps)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "GeneratorConfig":
        d = dict(d)
        if "resample_taps" in d:
            d["resample_taps"] = tuple(d["resample_taps"])
        return cls(**d)


class FullyConnectedLayer(nn.Module):
    """Equalised-learning-rate linear layer (weight stored as randn / lr_mul, scaled at run time)."""

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        activation: str = "linear",
        lr_multiplier: float = 1.0,
        bias_init: float = 0.0,
    ) -> None:
        super().__init__()
        self.activation = activation
        self.weight = nn.Parameter(torch.randn(out_features, in_features) / lr_multiplier)
        self.bias = nn.Parameter(torch.full([out_features], float(bias_init))) if bias else None
        self.weight_gain = lr_multiplier / math.sqrt(in_features)
        self.bias_gain = lr_multiplier

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.weight * self.weight_gain
        b = self.bias * self.bias_gain if self.bias is not None else None
        if self.activation == "linear" and b is not None:
            return torch.addmm(b.unsqueeze(0), x, w.t())
        return bias_act(x.matmul(w.t()), b, act=self.activation)


class MappingNetwork(nn.Module):
    """z -> w MLP; broadcasts w to ``num_ws`` layers and keeps the running average ``w_avg``."""

    def __init__(self, cfg: GeneratorConfig) -> None:
        super().__init__()
        self.z_dim, self.w_dim, self.num_ws = cfg.z_dim, cfg.w_dim, cfg.num_ws
        self.num_layers = cfg.mapping_layers
        self.w_avg_beta = cfg.w_avg_beta
        feats = [cfg.z_dim] + [cfg.w_dim] * cfg.mapping_layers
        for i in range(cfg.mapping_layers):
            layer = FullyConnectedLayer(feats[i], feats[i + 1], activation="lrelu", lr_multiplier=cfg.mapping_lr_mul)
            setattr(self, f"fc{i}", layer)
        self.register_buffer("w_avg", torch.zeros([cfg.w_dim]))

    def forward(self, z: torch.Tensor, truncation_psi: float = 1.0, update_w_avg: bool = False) -> torch.Tensor:
        assert z.ndim == 2 and z.shape[1] == self.z_dim, f"z must be (N, {self.z_dim}), got {tuple(z.shape)}"
        x = normalize_2nd_moment(z.to(torch.float32))
        for i in range(self.num_layers):
            x = getattr(self, f"fc{i}")(x)
        if update_w_avg:
            self.w_avg.copy_(x.detach().mean(dim=0).lerp(self.w_avg, self.w_avg_beta))
        x = x.unsqueeze(1).repeat([1, self.num_ws, 1])
        if truncation_psi != 1:
            x = self.w_avg.lerp(x, truncation_psi)
        return x


class SynthesisLayer(nn.Module):
    """Modulated 3x3 conv (+ optional 2x up) + noise + bias + lrelu."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        w_dim: int,
        resolution: int,
        up: int = 1,
        conv_clamp: float | None = None,
        resample_taps: tuple[int, ...] = (1, 3, 3, 1),
        kernel_size: int = 3,
    ) -> None:
        super().__init__()
        self.resolution, self.up, self.conv_clamp = resolution, up, conv_clamp
        self.padding = kernel_size // 2
        self.register_buffer("resample_filter", setup_filter(resample_taps))
        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1.0)
        self.weight = nn.Parameter(torch.randn([out_channels, in_channels, kernel_size, kernel_size]))
        self.register_buffer("noise_const", torch.randn([resolution, resolution]))
        self.noise_strength = nn.Parameter(torch.zeros([]))
        self.bias = nn.Parameter(torch.zeros([out_channels]))

    def forward(self, x: torch.Tensor, w: torch.Tensor, noise_mode: str = "const", gain: float = 1.0) -> torch.Tensor:
        styles = self.affine(w)
        noise = None
        if noise_mode == "random":
            noise = torch.randn([x.shape[0], 1, self.resolution, self.resolution], device=x.device) * self.noise_strength
        elif noise_mode == "const":
            noise = self.noise_const * self.noise_strength
        x = modulated_conv2d(
            x, self.weight, styles, noise=noise, up=self.up, padding=self.padding, resample_filter=self.resample_filter
        )
        clamp = self.conv_clamp * gain if self.conv_clamp is not None else None
        return bias_act(x, self.bias, act="lrelu", gain=math.sqrt(2) * gain, clamp=clamp)


class ToRGBLayer(nn.Module):
    """Modulated 1x1 conv to RGB without demodulation."""

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, conv_clamp: float | None = None) -> None:
        super().__init__()
        self.conv_clamp = conv_clamp
        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1.0)
        self.weight = nn.Parameter(torch.randn([out_channels, in_channels, 1, 1]))
        self.bias = nn.Parameter(torch.zeros([out_channels]))
        self.weight_gain = 1.0 / math.sqrt(in_channels)

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        styles = self.affine(w) * self.weight_gain
        x = modulated_conv2d(x, self.weight, styles, demodulate=False)
        return bias_act(x, self.bias, clamp=self.conv_clamp)


class SynthesisBlock(nn.Module):
    """One resolution of the 'skip' architecture: [const |] conv0 (up) + conv1 + ToRGB."""

    def __init__(self, in_channels: int, out_channels: int, resolution: int, cfg: GeneratorConfig) -> None:
        super().__init__()
        self.in_channels, self.resolution = in_channels, resolution
        self.register_buffer("resample_filter", setup_filter(cfg.resample_taps))
        kw = dict(w_dim=cfg.w_dim, conv_clamp=cfg.conv_clamp, resample_taps=cfg.resample_taps)
        if in_channels == 0:
            self.const = nn.Parameter(torch.randn([out_channels, resolution, resolution]))
        else:
            self.conv0 = SynthesisLayer(in_channels, out_channels, resolution=resolution, up=2, **kw)
        self.conv1 = SynthesisLayer(out_channels, out_channels, resolution=resolution, **kw)
        self.torgb = ToRGBLayer(out_channels, cfg.img_channels, w_dim=cfg.w_dim, conv_clamp=cfg.conv_clamp)
        self.num_conv = 1 if in_channels == 0 else 2
        self.num_torgb = 1

    def forward(
        self, x: torch.Tensor | None, img: torch.Tensor | None, ws: torch.Tensor, noise_mode: str = "const"
    ) -> tuple[torch.Tensor, torch.Tensor]:
        assert ws.shape[1] == self.num_conv + self.num_torgb
        if self.in_channels == 0:
            x = self.const.unsqueeze(0).repeat([ws.shape[0], 1, 1, 1])
            x = self.conv1(x, ws[:, 0], noise_mode=noise_mode)
        else:
            x = self.conv0(x, ws[:, 0], noise_mode=noise_mode)
            x = self.conv1(x, ws[:, 1], noise_mode=noise_mode)
        if img is not None:
            img = upsample2d(img, self.resample_filter)
        y = self.torgb(x, ws[:, -1])
        img = y if img is None else img + y
        return x, img


class SynthesisNetwork(nn.Module):
    """ws (N, num_ws, w_dim) -> image (N, 3, R, R) in about [-1, 1]."""

    def __init__(self, cfg: GeneratorConfig) -> None:
        super().__init__()
        self.w_dim, self.img_resolution, self.num_ws = cfg.w_dim, cfg.img_resolution, cfg.num_ws
        self.block_resolutions = [2**i for i in range(2, int(math.log2(cfg.img_resolution)) + 1)]
        for res in self.block_resolutions:
            in_ch = cfg.channels(res // 2) if res > 4 else 0
            setattr(self, f"b{res}", SynthesisBlock(in_ch, cfg.channels(res), res, cfg))

    def forward(self, ws: torch.Tensor, noise_mode: str = "const") -> torch.Tensor:
        if noise_mode not in NOISE_MODES:
            raise ValueError(f"noise_mode must be one of {NOISE_MODES}, got {noise_mode!r}")
        assert ws.ndim == 3 and ws.shape[1:] == (self.num_ws, self.w_dim), (
            f"ws must be (N, {self.num_ws}, {self.w_dim}), got {tuple(ws.shape)}"
        )
        ws = ws.to(torch.float32)
        x = img = None
        w_idx = 0
        for res in self.block_resolutions:
            block = getattr(self, f"b{res}")
            x, img = block(x, img, ws[:, w_idx : w_idx + block.num_conv + block.num_torgb], noise_mode=noise_mode)
            w_idx += block.num_conv
        return img


class Generator(nn.Module):
    """StyleGAN2 generator: ``G.mapping(z) -> ws``, ``G.synthesis(ws) -> images``."""

    def __init__(self, cfg: GeneratorConfig | None = None, **kwargs) -> None:
        super().__init__()
        self.cfg = cfg if cfg is not None else GeneratorConfig(**kwargs)
        self.z_dim, self.w_dim = self.cfg.z_dim, self.cfg.w_dim
        self.img_resolution, self.img_channels = self.cfg.img_resolution, self.cfg.img_channels
        self.num_ws = self.cfg.num_ws
        self.mapping = MappingNetwork(self.cfg)
        self.synthesis = SynthesisNetwork(self.cfg)

    @property
    def w_avg(self) -> torch.Tensor:
        return self.mapping.w_avg

    def forward(self, z: torch.Tensor, truncation_psi: float = 1.0, noise_mode: str = "const") -> torch.Tensor:
        return self.synthesis(self.mapping(z, truncation_psi=truncation_psi), noise_mode=noise_mode)


def generator_num_params(g: nn.Module) -> int:
    return int(sum(np.prod(p.shape) for p in g.parameters()))
