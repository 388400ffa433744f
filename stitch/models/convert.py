"""Convert any supported checkpoint into Stitch's format (``generator`` / ``encoder`` ``.safetensors`` + ``.json``),
checking that the written model reproduces the loaded one exactly (``scripts/convert_checkpoint.py``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import torch

from stitch.errors import StitchError
from stitch.models.e4e import Encoder4Editing
from stitch.models.loaders import load_checkpoint
from stitch.models.native import load_native, save_model
from stitch.models.stylegan2 import Generator, generator_num_params


def describe_generator(g: Generator) -> str:
    c = g.cfg
    chans = {r: c.channels(r) for r in g.synthesis.block_resolutions}
    return (
        f"generator: {c.img_resolution} px, num_ws {g.num_ws}, z_dim {c.z_dim}, w_dim {c.w_dim}, "
        f"img_channels {c.img_channels}, channels {chans} (channel_base {c.channel_base}, channel_max "
        f"{c.channel_max}), mapping {c.mapping_layers} layers (lr_mul {c.mapping_lr_mul}), conv_clamp "
        f"{c.conv_clamp}, {generator_num_params(g):,} parameters"
    )


def describe_encoder(e: Encoder4Editing) -> str:
    c = e.cfg
    n = sum(int(p.numel()) for p in e.parameters())
    return (
        f"encoder: e4e IR-SE input {c.input_size} px, stages {list(c.stage_channels)} x {list(c.stage_units)} units, "
        f"num_ws {c.num_ws}, w_dim {c.w_dim}, coarse/middle {c.coarse_ind}/{c.middle_ind}, "
        f"SE reduction {c.se_reduction}, {n:,} parameters"
    )


def _max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().max())


def _generator_diff(g: Generator, g2: Generator) -> float:
    """Max abs difference of mapping + synthesis on two fixed latents."""
    z = torch.randn(2, g.z_dim, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        ws, ws2 = g.mapping(z, truncation_psi=0.7), g2.mapping(z, truncation_psi=0.7)
        return max(_max_diff(ws, ws2), _max_diff(g.synthesis(ws), g2.synthesis(ws)))


def _encoder_diff(e: Encoder4Editing, e2: Encoder4Editing) -> float:
    """Max abs difference of the codes of one fixed image."""
    s = e.cfg.input_size
    x = torch.rand(1, 3, s, s, generator=torch.Generator().manual_seed(0)) * 2 - 1
    with torch.no_grad():
        return _max_diff(e(x), e2(x))


def _save_checked(model: Generator | Encoder4Editing, kind: str, dst: Path, extra: dict,
                  echo: Callable[[str], None]) -> Path:
    """Write ``dst/<kind>.safetensors`` (+ .json) and check that reloading it reproduces ``model`` exactly."""
    echo(describe_generator(model) if kind == "generator" else describe_encoder(model))
    wpath = save_model(model, dst / f"{kind}.safetensors", extra=extra)
    reloaded = load_native(wpath, kind=kind)
    d = _generator_diff(model, reloaded) if kind == "generator" else _encoder_diff(model, reloaded)
    if d != 0:
        raise StitchError(f"{wpath}: converted {kind} differs from the source (max abs diff {d:.3g})")
    probe = "latent" if kind == "generator" else "image"
    echo(f"wrote {wpath} (+ .json); reproduces the source on a fixed {probe} (max abs diff {d})")
    return wpath


def convert_checkpoint(src: str | Path, dst: str | Path, echo: Callable[[str], None] = print) -> dict:
    """Convert ``src`` (any supported format) into Stitch's format in folder ``dst``; returns a summary."""
    src, dst = Path(src), Path(dst)
    if dst.exists() and not dst.is_dir():
        raise StitchError(f"{dst}: destination must be a folder")
    out = load_checkpoint(src)
    echo(f"source: {src} ({out.format}); {out.source_tensors} tensors read, all used")
    for n in out.notes:
        echo(f"note: {n}")
    dst.mkdir(parents=True, exist_ok=True)
    summary: dict[str, Any] = {"source": str(src), "format": out.format, "tensors": out.source_tensors, "files": []}
    extra = {"source": src.name, "source_format": out.format}
    for kind, model in (("generator", out.generator), ("encoder", out.encoder)):
        if model is not None:
            summary["files"].append(str(_save_checked(model, kind, dst, extra, echo)))
            summary[kind] = model.cfg.to_dict()
    return summary
