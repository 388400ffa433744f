"""rosinality ``stylegan2-pytorch`` checkpoints (``g_ema`` [+ ``latent_avg``, ``args``], or a bare generator state
dict), renamed onto the NVIDIA layout of :class:`~stitch.models.stylegan2.Generator`.

The architecture is inferred from the tensor shapes (and cross-checked with ``args`` when present); blur /
upsample kernels are checked against the standard [1, 3, 3, 1] filter and dropped (the model recomputes them).
Every source tensor must be used. e4e decoders are rosinality generators too (:mod:`stitch.models.e4e_ckpt`).
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

import torch

from stitch.errors import StitchError
from stitch.models.native import load_state_strict
from stitch.models.ops import DEFAULT_TAPS, setup_filter
from stitch.models.sniff import LoadedCheckpoint
from stitch.models.stylegan2 import Generator, GeneratorConfig

log = logging.getLogger(__name__)

W_AVG_SAMPLES = 10_000
W_AVG_SEED = 0


def opts_dict(opts: Any) -> dict:
    """``args`` / ``opts`` of a checkpoint (Namespace or dict) as a dict; anything else as {}."""
    if opts is None:
        return {}
    if isinstance(opts, argparse.Namespace):
        return dict(vars(opts))
    if isinstance(opts, dict):
        return dict(opts)
    return {}


def tensor_dict(d: Any, what: str, source: Path) -> dict[str, torch.Tensor]:
    """``d`` after checking it is a non-empty dict of str -> tensor."""
    if not isinstance(d, dict) or not d:
        raise StitchError(f"{source}: {what} is not a state dict")
    bad = [k for k, v in d.items() if not isinstance(k, str) or not isinstance(v, torch.Tensor)]
    if bad:
        raise StitchError(f"{source}: {what} has non-tensor entries, e.g. {bad[0]!r}")
    return d


class _Tensors:
    """A rosinality state dict whose reads are recorded, so tensors nobody read can be reported."""

    def __init__(self, sd: dict[str, torch.Tensor], source: Path) -> None:
        self.sd, self.source, self.used = dict(sd), source, set()

    def __getitem__(self, key: str) -> torch.Tensor:
        if key not in self.sd:
            raise StitchError(f"{self.source}: rosinality generator lacks {key!r}")
        self.used.add(key)
        return self.sd[key]

    def count(self, pattern: str, start: int = 0) -> int:
        """How many consecutive ``pattern.format(start + i)`` keys exist."""
        n = 0
        while pattern.format(start + n) in self.sd:
            n += 1
        return n

    def check_all_used(self) -> None:
        leftovers = sorted(set(self.sd) - self.used)
        if leftovers:
            raise StitchError(f"{self.source}: {len(leftovers)} rosinality tensor(s) not understood: {leftovers[:6]}")


def _check_args(args: dict, source: Path, res_max: int, w_dim: int, n_mlp: int) -> None:
    if "size" in args and int(args["size"]) != res_max:
        raise StitchError(f"{source}: args.size={args['size']} but the weights are for {res_max} px")
    if "latent" in args and int(args["latent"]) != w_dim:
        raise StitchError(f"{source}: args.latent={args['latent']} but the weights have w_dim {w_dim}")
    if "n_mlp" in args and int(args["n_mlp"]) != n_mlp:
        raise StitchError(f"{source}: args.n_mlp={args['n_mlp']} but the weights have {n_mlp} mapping layers")


def _channel_layout(ch: dict[int, int], res_max: int, cm: Any) -> tuple[int, int]:
    """(channel_base, channel_max): from ``args.channel_multiplier`` when given, else from channels per resolution."""
    if cm is not None:
        return 16384 * int(cm), 512
    cmax = ch[4]
    below = [r for r in sorted(ch) if ch[r] < cmax]
    channel_base = ch[below[0]] * below[0] if below else max(cmax * res_max, 32768 if cmax == 512 else 0)
    return channel_base, cmax


def _check_kernels(t: _Tensors, n_rgb: int) -> None:
    """Blur / upsample kernels must be the standard resample filter (they are recomputed, not loaded)."""
    ref = setup_filter(DEFAULT_TAPS) * 4
    keys = [f"convs.{2 * k}.conv.blur.kernel" for k in range(n_rgb)] + [f"to_rgbs.{k}.upsample.kernel" for k in range(n_rgb)]
    for key in keys:
        kern = t[key]
        if tuple(kern.shape) != tuple(ref.shape) or not torch.allclose(kern.float(), ref, atol=1e-6):
            raise StitchError(f"{t.source}: {key} is not the standard [1,3,3,1] blur kernel; unsupported")


def _infer_config(t: _Tensors, args: dict | None, lr_mlp: float) -> GeneratorConfig:
    """GeneratorConfig from the tensor shapes (cross-checked with ``args``)."""
    source = t.source
    n_mlp = t.count("style.{}.weight", start=1)
    if n_mlp == 0:
        raise StitchError(f"{source}: not a rosinality StyleGAN2 generator (no 'style.1.weight')")
    w_dim, z_dim = t["style.1.weight"].shape
    n_rgb = t.count("to_rgbs.{}.conv.weight")
    res_max = 2 ** (n_rgb + 2)
    ch = {4: t["conv1.conv.weight"].shape[1]}  # channels per resolution from the conv weights (1, out, in, k, k)
    for k in range(n_rgb):
        ch[2 ** (k + 3)] = t[f"convs.{2 * k}.conv.weight"].shape[1]
    if args:
        _check_args(args, source, res_max, w_dim, n_mlp)
    channel_base, channel_max = _channel_layout(ch, res_max, (args or {}).get("channel_multiplier"))
    _check_kernels(t, n_rgb)
    try:
        cfg = GeneratorConfig(
            z_dim=int(z_dim), w_dim=int(w_dim), img_resolution=res_max,
            img_channels=int(t["to_rgb1.conv.weight"].shape[1]), mapping_layers=n_mlp, mapping_lr_mul=lr_mlp,
            channel_base=int(channel_base), channel_max=int(channel_max), conv_clamp=None, resample_taps=DEFAULT_TAPS,
        )
    except ValueError as e:
        raise StitchError(f"{source}: invalid generator architecture ({e})") from None
    wrong = {r: (c, cfg.channels(r)) for r, c in ch.items() if cfg.channels(r) != c}
    if wrong:
        raise StitchError(
            f"{source}: channel layout {ch} does not fit channel_base={channel_base}/channel_max={channel_max} "
            f"(resolution: (found, expected) {wrong})"
        )
    return cfg


def _styled(t: _Tensors, out: dict, src: str, dst: str, noise_idx: int, filt: torch.Tensor) -> None:
    """A rosinality ``StyledConv`` (+ its fixed noise buffer) as an NVIDIA ``SynthesisLayer``."""
    out[f"{dst}.weight"] = t[f"{src}.conv.weight"].squeeze(0)
    out[f"{dst}.affine.weight"] = t[f"{src}.conv.modulation.weight"]
    out[f"{dst}.affine.bias"] = t[f"{src}.conv.modulation.bias"]
    out[f"{dst}.noise_strength"] = t[f"{src}.noise.weight"].reshape([])
    noise = t[f"noises.noise_{noise_idx}"]
    out[f"{dst}.noise_const"] = noise.reshape(noise.shape[-2:])
    out[f"{dst}.bias"] = t[f"{src}.activate.bias"]
    out[f"{dst}.resample_filter"] = filt.clone()


def _torgb(t: _Tensors, out: dict, src: str, dst: str) -> None:
    """A rosinality ``ToRGB`` as an NVIDIA ``ToRGBLayer``."""
    out[f"{dst}.weight"] = t[f"{src}.conv.weight"].squeeze(0)
    out[f"{dst}.affine.weight"] = t[f"{src}.conv.modulation.weight"]
    out[f"{dst}.affine.bias"] = t[f"{src}.conv.modulation.bias"]
    out[f"{dst}.bias"] = t[f"{src}.bias"].reshape(-1)


def _rename(t: _Tensors, cfg: GeneratorConfig) -> dict[str, torch.Tensor]:
    """Stitch's state dict (without ``mapping.w_avg``) from the rosinality tensors (b4, then one block per
    ``to_rgbs.<k>``)."""
    out: dict[str, torch.Tensor] = {}
    for i in range(cfg.mapping_layers):
        out[f"mapping.fc{i}.weight"] = t[f"style.{i + 1}.weight"]
        out[f"mapping.fc{i}.bias"] = t[f"style.{i + 1}.bias"]
    out["synthesis.b4.const"] = t["input.input"].squeeze(0)
    filt = setup_filter(DEFAULT_TAPS)
    _styled(t, out, "conv1", "synthesis.b4.conv1", 0, filt)
    _torgb(t, out, "to_rgb1", "synthesis.b4.torgb")
    out["synthesis.b4.resample_filter"] = filt.clone()
    for k in range(t.count("to_rgbs.{}.conv.weight")):
        r = 2 ** (k + 3)
        _styled(t, out, f"convs.{2 * k}", f"synthesis.b{r}.conv0", 2 * k + 1, filt)
        _styled(t, out, f"convs.{2 * k + 1}", f"synthesis.b{r}.conv1", 2 * k + 2, filt)
        _torgb(t, out, f"to_rgbs.{k}", f"synthesis.b{r}.torgb")
        out[f"synthesis.b{r}.resample_filter"] = filt.clone()
    return out


def _w_avg(latent_avg: torch.Tensor, w_dim: int, source: Path, notes: list[str]) -> torch.Tensor:
    """``mapping.w_avg`` from a checkpoint's ``latent_avg`` ((w_dim,) or rows of it; differing rows are averaged)."""
    la = latent_avg.detach().float().reshape(-1, latent_avg.shape[-1])
    if la.shape[-1] != w_dim:
        raise StitchError(f"{source}: latent_avg has width {la.shape[-1]}, expected w_dim {w_dim}")
    if torch.equal(la, la[:1].expand_as(la)):
        return la[0].clone()
    notes.append("latent_avg rows differ: w_avg = their mean")
    return la.mean(0)


def rosinality_to_stitch(
    sd: dict[str, torch.Tensor],
    source: str | Path,
    latent_avg: torch.Tensor | None = None,
    args: dict | None = None,
    lr_mlp: float = 0.01,
) -> tuple[GeneratorConfig, dict[str, torch.Tensor], list[str]]:
    """Rename a rosinality ``Generator`` state dict onto Stitch's (= NVIDIA's) layout.

    The architecture is inferred from the tensor shapes (and cross-checked with ``args`` when given).
    Returns ``(config, state_dict_without_w_avg_if_unknown, notes)``; every source key must be consumed.
    """
    t = _Tensors(sd, Path(source))
    notes: list[str] = []
    cfg = _infer_config(t, args, lr_mlp)
    out = _rename(t, cfg)
    t.check_all_used()
    if latent_avg is not None:
        out["mapping.w_avg"] = _w_avg(latent_avg, cfg.w_dim, t.source, notes)
    return cfg, out, notes


def _estimate_w_avg(g: Generator) -> torch.Tensor:
    gen = torch.Generator().manual_seed(W_AVG_SEED)
    z = torch.randn(W_AVG_SAMPLES, g.z_dim, generator=gen)
    with torch.no_grad():
        return g.mapping(z)[:, 0].mean(0)


def build_rosinality_generator(
    sd: dict, source: Path, latent_avg: torch.Tensor | None, args: dict | None
) -> tuple[Generator, list[str]]:
    """The generator of a rosinality state dict; without ``latent_avg`` its w_avg is estimated (seeded, logged)."""
    lr_mlp = float((args or {}).get("lr_mlp", 0.01))
    cfg, state, notes = rosinality_to_stitch(sd, source, latent_avg=latent_avg, args=args, lr_mlp=lr_mlp)
    g = Generator(cfg)
    if "mapping.w_avg" not in state:
        state["mapping.w_avg"] = torch.zeros(cfg.w_dim)
        load_state_strict(g, state, source)
        w_avg = _estimate_w_avg(g)
        g.mapping.w_avg.copy_(w_avg)
        msg = (
            f"no latent_avg in the checkpoint: w_avg = mean of mapping(z) over {W_AVG_SAMPLES} z "
            f"(torch seed {W_AVG_SEED})"
        )
        log.info("%s: %s", source, msg)
        notes.append(msg)
    else:
        load_state_strict(g, state, source)
    return g, notes


def load_rosinality(path: Path, ckpt: dict) -> LoadedCheckpoint:
    """The ``g_ema`` generator of a rosinality checkpoint already read by ``torch_load``."""
    if "g_ema" in ckpt:
        sd = tensor_dict(ckpt["g_ema"], "g_ema", path)
        ignored = sorted(k for k in ckpt if k not in ("g_ema", "latent_avg", "args"))
    else:  # a bare generator state dict
        sd = tensor_dict(ckpt, "state dict", path)
        ignored = []
    latent_avg = ckpt.get("latent_avg") if "g_ema" in ckpt else None
    if latent_avg is not None and not isinstance(latent_avg, torch.Tensor):
        raise StitchError(f"{path}: latent_avg is a {type(latent_avg).__name__}, expected a tensor")
    args = opts_dict(ckpt.get("args")) if "g_ema" in ckpt else {}
    g, notes = build_rosinality_generator(sd, path, latent_avg, args)
    if ignored:
        notes.append(f"ignored checkpoint entries {ignored} (only g_ema is used)")
    n = len(sd) + (latent_avg is not None)
    return LoadedCheckpoint(path, "rosinality", generator=g, source_tensors=n, notes=notes)
