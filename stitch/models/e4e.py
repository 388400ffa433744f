"""e4e encoder (``Encoder4Editing``): IR-SE backbone, feature pyramid, one map2style head per W+ level.

Module names equal the official e4e checkpoint's ``encoder.*`` keys (``input_layer.0.weight``,
``body.3.res_layer.5.fc1.weight``, ``styles.7.convs.0.weight``, ``latlayer1.weight`` ...).
The official model is IR-SE-50 at 256 px with 512 channels; the demo pack uses the same class with fewer
units/channels. Output: W+ codes ``(N, num_ws, w_dim)`` = first code + progressive deltas + latent_avg.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F


@dataclass(frozen=True)
class EncoderConfig:
    """Constructor arguments of :class:`Encoder4Editing`; saved as JSON beside the weights.

    input_size: encoder input resolution (256 in e4e). stage_channels / stage_units: IR-SE stages
    (IR-SE-50: 64/128/256/512 channels, 3/4/14/3 units, each stage starting with a stride-2 unit).
    num_ws / w_dim: W+ shape of the generator. coarse_ind / middle_ind: first style indices fed from the
    middle and fine pyramid levels (3 and 7 in e4e). se_reduction: squeeze-excitation reduction.
    """

    input_size: int = 256
    stage_channels: tuple[int, ...] = (64, 128, 256, 512)
    stage_units: tuple[int, ...] = (3, 4, 14, 3)
    num_ws: int = 18
    w_dim: int = 512
    coarse_ind: int = 3
    middle_ind: int = 7
    se_reduction: int = 16

    def __post_init__(self) -> None:
        if len(self.stage_channels) != 4 or len(self.stage_units) != 4:
            raise ValueError("e4e needs exactly 4 backbone stages")

    def to_dict(self) -> dict:
        d = asdict(self)
        d["stage_channels"], d["stage_units"] = list(self.stage_channels), list(self.stage_units)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "EncoderConfig":
        d = dict(d)
        for k in ("stage_channels", "stage_units"):
            if k in d:
                d[k] = tuple(d[k])
        return cls(**d)


class SEModule(nn.Module):
    def __init__(self, channels: int, reduction: int) -> None:
        super().__init__()
        hidden = max(channels // reduction, 1)
        self.avg_pool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Conv2d(channels, hidden, kernel_size=1, padding=0, bias=False)
        self.relu = nn.ReLU(inplace=True)
        self.fc2 = nn.Conv2d(hidden, channels, kernel_size=1, padding=0, bias=False)
        self.sigmoid = nn.Sigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.sigmoid(self.fc2(self.relu(self.fc1(self.avg_pool(x)))))
        return x * s


class BottleneckIRSE(nn.Module):
    """IR-SE residual unit: BN-conv3-PReLU-conv3(stride)-BN-SE + shortcut."""

    def __init__(self, in_channel: int, depth: int, stride: int, se_reduction: int) -> None:
        super().__init__()
        if in_channel == depth:
            self.shortcut_layer = nn.MaxPool2d(1, stride)
        else:
            self.shortcut_layer = nn.Sequential(
                nn.Conv2d(in_channel, depth, (1, 1), stride, bias=False), nn.BatchNorm2d(depth)
            )
        self.res_layer = nn.Sequential(
            nn.BatchNorm2d(in_channel),
            nn.Conv2d(in_channel, depth, (3, 3), (1, 1), 1, bias=False),
            nn.PReLU(depth),
            nn.Conv2d(depth, depth, (3, 3), stride, 1, bias=False),
            nn.BatchNorm2d(depth),
            SEModule(depth, se_reduction),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.res_layer(x) + self.shortcut_layer(x)


class EqualLinear(nn.Module):
    """Equalised linear layer without activation (rosinality/e4e naming: ``weight``, ``bias``)."""

    def __init__(self, in_dim: int, out_dim: int, lr_mul: float = 1.0) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_dim, in_dim) / lr_mul)
        self.bias = nn.Parameter(torch.zeros(out_dim))
        self.scale = lr_mul / math.sqrt(in_dim)
        self.lr_mul = lr_mul

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight * self.scale, bias=self.bias * self.lr_mul)


class GradualStyleBlock(nn.Module):
    """map2style: stride-2 convs down to 1x1, then an equalised linear layer."""

    def __init__(self, in_c: int, out_c: int, spatial: int) -> None:
        super().__init__()
        self.out_c = out_c
        num_pools = int(math.log2(spatial))
        assert 2**num_pools == spatial and num_pools >= 1, spatial
        mods: list[nn.Module] = [nn.Conv2d(in_c, out_c, 3, 2, 1), nn.LeakyReLU()]
        for _ in range(num_pools - 1):
            mods += [nn.Conv2d(out_c, out_c, 3, 2, 1), nn.LeakyReLU()]
        self.convs = nn.Sequential(*mods)
        self.linear = EqualLinear(out_c, out_c, lr_mul=1.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.convs(x)
        return self.linear(x.reshape(-1, self.out_c))


def _upsample_add(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return F.interpolate(x, size=y.shape[-2:], mode="bilinear", align_corners=True) + y


class Encoder4Editing(nn.Module):
    """Images (N, 3, S, S) in [-1, 1] -> W+ codes (N, num_ws, w_dim), ``latent_avg`` included."""

    def __init__(self, cfg: EncoderConfig | None = None, **kwargs) -> None:
        super().__init__()
        self.cfg = cfg = cfg if cfg is not None else EncoderConfig(**kwargs)
        ch = cfg.stage_channels
        self.input_layer = nn.Sequential(nn.Conv2d(3, ch[0], (3, 3), 1, 1, bias=False), nn.BatchNorm2d(ch[0]), nn.PReLU(ch[0]))
        units: list[nn.Module] = []
        in_c = ch[0]
        for depth, n in zip(ch, cfg.stage_units):
            units.append(BottleneckIRSE(in_c, depth, 2, cfg.se_reduction))
            units += [BottleneckIRSE(depth, depth, 1, cfg.se_reduction) for _ in range(n - 1)]
            in_c = depth
        self.body = nn.Sequential(*units)
        ends = [sum(cfg.stage_units[: i + 1]) - 1 for i in range(4)]
        self.c1_idx, self.c2_idx, self.c3_idx = ends[1], ends[2], ends[3]
        s = cfg.input_size
        spatial = {"coarse": s // 16, "middle": s // 8, "fine": s // 4}
        self.styles = nn.ModuleList()
        for i in range(cfg.num_ws):
            level = "coarse" if i < cfg.coarse_ind else ("middle" if i < cfg.middle_ind else "fine")
            self.styles.append(GradualStyleBlock(ch[3], cfg.w_dim, spatial[level]))
        self.latlayer1 = nn.Conv2d(ch[2], ch[3], kernel_size=1, stride=1, padding=0)
        self.latlayer2 = nn.Conv2d(ch[1], ch[3], kernel_size=1, stride=1, padding=0)
        self.register_buffer("latent_avg", torch.zeros(cfg.num_ws, cfg.w_dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.cfg.input_size
        assert x.ndim == 4 and x.shape[1:] == (3, s, s), f"encoder input must be (N, 3, {s}, {s}), got {tuple(x.shape)}"
        x = self.input_layer(x)
        c1 = c2 = c3 = None
        for i, unit in enumerate(self.body):
            x = unit(x)
            if i == self.c1_idx:
                c1 = x
            elif i == self.c2_idx:
                c2 = x
            elif i == self.c3_idx:
                c3 = x
        w0 = self.styles[0](c3)
        deltas = [w0]
        features = c3
        p2 = None
        for i in range(1, self.cfg.num_ws):
            if i == self.cfg.coarse_ind:
                p2 = _upsample_add(c3, self.latlayer1(c2))
                features = p2
            elif i == self.cfg.middle_ind:
                features = _upsample_add(p2, self.latlayer2(c1))
            deltas.append(w0 + self.styles[i](features))
        codes = torch.stack(deltas, dim=1)
        return codes + self.latent_avg.unsqueeze(0)
