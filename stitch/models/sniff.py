"""Checkpoint formats: detection from a file's first bytes (never its extension), the record every format reader
returns (:class:`LoadedCheckpoint`) and the pieces of their one-line error messages."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from stitch.models.e4e import Encoder4Editing
from stitch.models.stylegan2 import Generator

_TORCH_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C  # first object of a legacy (non-zip) torch.save file

EXPECTED = (
    "expected a Stitch .safetensors model, an NVIDIA StyleGAN2-ADA network pickle (.pkl), "
    "or a rosinality/e4e PyTorch checkpoint (.pt)"
)


@dataclass
class LoadedCheckpoint:
    """What :func:`stitch.models.loaders.load_checkpoint` found: the models plus provenance for reports."""

    path: Path
    format: str  # 'stitch' | 'nvidia-pkl' | 'rosinality' | 'e4e'
    generator: Generator | None = None
    encoder: Encoder4Editing | None = None
    source_tensors: int = 0  # tensors read from the source (all of them were used)
    notes: list[str] = field(default_factory=list)


def sniff(path: Path) -> str:
    """'stitch-dir' | 'torch-zip' | 'torch-legacy' | 'safetensors' | 'pickle' | 'unknown'."""
    if path.is_dir():
        return "stitch-dir"
    with open(path, "rb") as f:
        head = f.read(16)
    if head.startswith(b"PK\x03\x04"):
        return "torch-zip"
    if head[:4] == b"\x80\x02\x8a\x0a" and int.from_bytes(head[4:14], "little") == _TORCH_LEGACY_MAGIC:
        return "torch-legacy"
    if len(head) >= 9:
        n = int.from_bytes(head[:8], "little")
        if 2 <= n < (1 << 30) and head[8:9] == b"{":
            return "safetensors"
    if len(head) >= 2 and head[0] == 0x80 and 2 <= head[1] <= 5:
        return "pickle"
    if path.suffix == ".json" and path.with_suffix(".safetensors").is_file():
        return "safetensors"
    return "unknown"


def first_line(e: BaseException) -> str:
    """``Type: first line of the message`` of an exception, for one-line errors."""
    s = str(e).strip().splitlines()
    return f"{type(e).__name__}: {s[0]}" if s else type(e).__name__
