"""Load StyleGAN2 / e4e checkpoints into Stitch's models, without executing anything from the file.

Supported sources (the format is detected from the file's bytes, not its extension; :mod:`stitch.models.sniff`):

* NVIDIA StyleGAN2-ADA network pickles (``ffhq.pkl`` as used by STIT/PTI; :mod:`stitch.models.nvidia`), read by
  a restricted unpickler (:mod:`stitch.models.safe_unpickle`).
* rosinality ``stylegan2-pytorch`` checkpoints (:mod:`stitch.models.rosinality`).
* e4e checkpoints: the encoder and its rosinality decoder (:mod:`stitch.models.e4e_ckpt`).
* Stitch's own format (``.safetensors`` + ``.json``, see :mod:`stitch.models.native`), a file or a folder
  holding ``generator.safetensors`` / ``encoder.safetensors``.

``.pt`` files are read with ``torch.load(weights_only=True)`` (plus ``argparse.Namespace`` for the ``args`` /
``opts`` entries). Every source tensor must be used: leftovers, missing keys or shape mismatches are errors.
"""

from __future__ import annotations

from pathlib import Path

import torch

from stitch.errors import StitchError
from stitch.models.e4e import Encoder4Editing
from stitch.models.e4e_ckpt import load_e4e_checkpoint
from stitch.models.native import load_native
from stitch.models.nvidia import load_nvidia_pickle
from stitch.models.rosinality import load_rosinality
from stitch.models.safe_unpickle import torch_load
from stitch.models.sniff import EXPECTED, LoadedCheckpoint, first_line, sniff
from stitch.models.stylegan2 import Generator


def _load_stitch(path: Path, want: str | None) -> LoadedCheckpoint:
    out = LoadedCheckpoint(path, "stitch")
    if path.is_dir():
        for kind in ("generator", "encoder"):
            p = path / f"{kind}.safetensors"
            if p.is_file() and want in (None, kind):
                model = load_native(p, kind=kind)
                setattr(out, kind, model)
                out.source_tensors += len(model.state_dict())
        if out.generator is None and out.encoder is None:
            raise StitchError(f"{path}: folder holds no {want or 'generator/encoder'}.safetensors")
        return out
    model = load_native(path, kind=want)
    kind = "generator" if isinstance(model, Generator) else "encoder"
    setattr(out, kind, model)
    out.source_tensors = len(model.state_dict())
    return out


def _load_by_format(path: Path, fmt: str, want: str | None) -> LoadedCheckpoint:
    if fmt in ("stitch-dir", "safetensors"):
        return _load_stitch(path, want)
    if fmt == "pickle":
        return load_nvidia_pickle(path)
    ckpt = torch_load(path)
    if not isinstance(ckpt, dict):
        raise StitchError(f"{path}: PyTorch file holds a {type(ckpt).__name__}; {EXPECTED}")
    sd = ckpt.get("state_dict")
    if isinstance(sd, dict) and any(isinstance(k, str) and k.startswith("encoder.") for k in sd):
        return load_e4e_checkpoint(path, ckpt)
    if "g_ema" in ckpt or "style.1.weight" in ckpt:
        return load_rosinality(path, ckpt)
    raise StitchError(
        f"{path}: PyTorch checkpoint with keys {sorted(map(str, ckpt))[:6]} is neither rosinality "
        "(g_ema) nor e4e (state_dict with encoder.*)"
    )


def load_checkpoint(path: str | Path, device: str | torch.device = "cpu", want: str | None = None) -> LoadedCheckpoint:
    """Load any supported checkpoint; ``want`` ('generator'/'encoder') only steers Stitch folders."""
    path = Path(path)
    if not path.exists():
        raise StitchError(f"{path}: file not found")
    try:
        fmt = sniff(path)
    except OSError as e:
        raise StitchError(f"{path}: cannot read ({first_line(e)})") from None
    if fmt == "unknown":
        raise StitchError(f"{path}: not a recognised checkpoint; {EXPECTED}")
    try:
        out = _load_by_format(path, fmt, want)
    except StitchError:
        raise
    except (RuntimeError, ValueError, TypeError, AttributeError, IndexError, KeyError) as e:
        # shapes/types that no official writer produces (e.g. a tampered file) surface here
        raise StitchError(f"{path}: malformed {fmt} checkpoint ({first_line(e)})") from None
    for m in (out.generator, out.encoder):
        if m is not None:
            m.eval().requires_grad_(False).to(device)
    return out


def load_generator(path: str | Path, device: str | torch.device = "cpu") -> Generator:
    """StyleGAN2 generator from a Stitch file/folder, NVIDIA pickle, rosinality or e4e checkpoint."""
    out = load_checkpoint(path, device, want="generator")
    if out.generator is None:
        raise StitchError(f"{path}: holds an encoder, expected a generator")
    return out.generator


def load_encoder(path: str | Path, device: str | torch.device = "cpu") -> Encoder4Editing:
    """e4e encoder from a Stitch file/folder or an e4e checkpoint."""
    out = load_checkpoint(path, device, want="encoder")
    if out.encoder is None:
        raise StitchError(f"{path}: holds a generator ({out.format}), expected an e4e encoder")
    return out.encoder


def load_e4e(path: str | Path, device: str | torch.device = "cpu") -> tuple[Encoder4Editing, Generator]:
    """(encoder, decoder generator) from an e4e checkpoint or a Stitch folder holding both."""
    out = load_checkpoint(path, device)
    if out.encoder is None or out.generator is None:
        raise StitchError(f"{path}: expected an e4e checkpoint with both encoder and decoder")
    return out.encoder, out.generator
