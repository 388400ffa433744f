"""Pure-PyTorch versions of StyleGAN2's custom ops (no compiled CUDA extensions).

Conventions follow NVIDIA's StyleGAN2-ADA reference ops (``upfirdn2d``, ``bias_act``,
``conv2d_resample``, ``modulated_conv2d``) so weights from official checkpoints give the same images.
Padding tuples are ``(x0, x1, y0, y1)``.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F

SQRT2 = math.sqrt(2.0)
DEFAULT_TAPS = (1, 3, 3, 1)  # StyleGAN2's resample filter


def setup_filter(taps: Sequence[float]) -> torch.Tensor:
    """Separable FIR taps -> normalised 2-D filter (outer product, sum 1), e.g. [1, 3, 3, 1]."""
    f = torch.as_tensor(taps, dtype=torch.float32)
    assert f.ndim == 1 and f.numel() > 0
    f = torch.outer(f, f)
    return f / f.sum()


def upfirdn2d(
    x: torch.Tensor,
    f: torch.Tensor,
    up: int = 1,
    down: int = 1,
    pad: tuple[int, int, int, int] = (0, 0, 0, 0),
    gain: float = 1.0,
) -> torch.Tensor:
    """Upsample by zero insertion, pad, convolve with the 2-D FIR filter ``f``, then downsample.

    ``gain`` scales the filter as ``f * gain ** (f.ndim / 2)``; the filter is flipped (true convolution).
    """
    assert x.ndim == 4 and f.ndim == 2
    n, c, h, w = x.shape
    if up > 1:
        x = x.reshape(n, c, h, 1, w, 1)
        x = F.pad(x, [0, up - 1, 0, 0, 0, up - 1])
        x = x.reshape(n, c, h * up, w * up)
    px0, px1, py0, py1 = pad
    x = F.pad(x, [max(px0, 0), max(px1, 0), max(py0, 0), max(py1, 0)])
    x = x[:, :, max(-py0, 0) : x.shape[2] - max(-py1, 0), max(-px0, 0) : x.shape[3] - max(-px1, 0)]
    f = (f * (gain ** (f.ndim / 2))).to(x.dtype).flip([0, 1])
    f = f[None, None].repeat(c, 1, 1, 1)
    x = F.conv2d(x, f, groups=c)
    if down > 1:
        x = x[:, :, ::down, ::down]
    return x


def upsample2d(x: torch.Tensor, f: torch.Tensor, up: int = 2) -> torch.Tensor:
    """FIR upsampling by ``up`` keeping the signal's gain (skip-connection image upsampling)."""
    fw = f.shape[-1]
    p = ((fw + up - 1) // 2, (fw - up) // 2)
    return upfirdn2d(x, f, up=up, pad=(p[0], p[1], p[0], p[1]), gain=up * up)


def bias_act(
    x: torch.Tensor,
    b: torch.Tensor | None,
    act: str = "linear",
    gain: float | None = None,
    clamp: float | None = None,
) -> torch.Tensor:
    """Add a per-channel bias (dim 1), apply ``linear`` or ``lrelu`` (slope 0.2, gain sqrt 2), clamp."""
    if b is not None:
        shape = [1, -1] + [1] * (x.ndim - 2)
        x = x + b.reshape(shape)
    if act == "lrelu":
        x = F.leaky_relu(x, 0.2)
        def_gain = SQRT2
    elif act == "linear":
        def_gain = 1.0
    else:
        raise ValueError(f"unsupported activation {act!r}")
    g = def_gain if gain is None else gain
    if g != 1:
        x = x * g
    if clamp is not None and clamp >= 0:
        x = x.clamp(-clamp, clamp)
    return x


def modulated_conv2d(
    x: torch.Tensor,
    weight: torch.Tensor,
    styles: torch.Tensor,
    noise: torch.Tensor | None = None,
    up: int = 1,
    padding: int = 0,
    resample_filter: torch.Tensor | None = None,
    demodulate: bool = True,
) -> torch.Tensor:
    """Style-modulated convolution (StyleGAN2), computed by scaling activations around one plain conv.

    x: (N, I, H, W); weight: (O, I, k, k); styles: (N, I). With ``up=2`` a stride-2 transposed conv is
    followed by the FIR filter, as in the reference ``conv2d_resample``.
    """
    n = x.shape[0]
    out_ch, in_ch, kh, kw = weight.shape
    assert x.shape[1] == in_ch and styles.shape == (n, in_ch), (x.shape, weight.shape, styles.shape)
    dcoefs = None
    if demodulate:
        w = weight.unsqueeze(0) * styles.reshape(n, 1, -1, 1, 1)
        dcoefs = (w.square().sum(dim=[2, 3, 4]) + 1e-8).rsqrt()  # (N, O)
    x = x * styles.reshape(n, -1, 1, 1)
    if up == 1:
        x = F.conv2d(x, weight, padding=padding)
    else:
        assert up == 2 and resample_filter is not None
        fw = resample_filter.shape[-1]
        px0 = padding + (fw + up - 1) // 2 - (kw - 1)
        px1 = padding + (fw - up) // 2 - (kw - up)
        x = F.conv_transpose2d(x, weight.transpose(0, 1), stride=up)
        x = upfirdn2d(x, resample_filter, pad=(px0, px1, px0, px1), gain=up * up)
    if dcoefs is not None:
        x = x * dcoefs.reshape(n, -1, 1, 1)
    if noise is not None:
        x = x + noise
    return x


def normalize_2nd_moment(x: torch.Tensor, dim: int = 1, eps: float = 1e-8) -> torch.Tensor:
    return x * (x.square().mean(dim=dim, keepdim=True) + eps).rsqrt()
