"""Model packs: a folder with ``pack.yaml`` (resolution, files with sha256, licence, provenance, defaults).

Packs are selected by name (``resources/models/<name>``) or by path. Every file listed in the manifest is
checked against its sha256 before use; a missing or corrupt file gives one line naming it and how to get it.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from stitch.atomic import atomic_path, write_text
from stitch.errors import StitchError

if TYPE_CHECKING:  # torch loads only where weights are read: the Snakefile parses without it
    import torch

REPO_ROOT = Path(__file__).resolve().parents[2]
PACKS_DIR = REPO_ROOT / "resources" / "models"
REQUIRED_FILES = ("generator", "encoder", "directions")
SHA256 = re.compile(r"[0-9a-f]{64}")


def sha256_of(path: str | Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def resolve_pack_dir(name_or_path: str | Path) -> Path:
    p = Path(name_or_path)
    if p.is_dir() and (p / "pack.yaml").is_file():
        return p
    cand = PACKS_DIR / str(name_or_path)
    if (cand / "pack.yaml").is_file():
        return cand
    known = sorted(d.name for d in PACKS_DIR.iterdir() if (d / "pack.yaml").is_file()) if PACKS_DIR.is_dir() else []
    raise StitchError(f"model pack {name_or_path!r} not found (no pack.yaml there nor in {cand.parent}); set pack: to "
                      f"one of {', '.join(known) or 'the packs in ' + str(PACKS_DIR)} or to a pack folder's path")


@dataclass
class Pack:
    """A verified model pack. Files are checked lazily (sha256) the first time they are used."""

    root: Path
    meta: dict[str, Any]
    _verified: set = field(default_factory=set)

    @classmethod
    def open(cls, name_or_path: str | Path) -> "Pack":
        root = resolve_pack_dir(name_or_path)
        try:
            meta = yaml.safe_load((root / "pack.yaml").read_text())
        except yaml.YAMLError as e:
            mark = getattr(e, "problem_mark", None)
            at = f" at line {mark.line + 1}" if mark is not None else ""
            raise StitchError(f"{root / 'pack.yaml'}: invalid YAML{at} ({str(e).splitlines()[0]}); fix the file or "
                              "restore the pack") from None
        if not isinstance(meta, dict):
            raise StitchError(f"{root / 'pack.yaml'}: not a manifest (a YAML mapping with name, files, ...)")
        for key in ("name", "resolution", "num_ws", "w_dim", "files"):
            if key not in meta:
                raise StitchError(f"{root / 'pack.yaml'}: missing required key {key!r}")
        missing = [k for k in REQUIRED_FILES if k not in meta["files"]]
        if missing:
            raise StitchError(f"{root / 'pack.yaml'}: files section lacks {missing}")
        check_hashes(meta["files"], root / "pack.yaml")
        return cls(root, meta)

    @property
    def name(self) -> str:
        return str(self.meta["name"])

    @property
    def resolution(self) -> int:
        return int(self.meta["resolution"])

    @property
    def align_scale(self) -> float:
        return float(self.meta.get("align_scale", 1.0))

    @property
    def encoder_input(self) -> int:
        return int(self.meta.get("encoder_input", 256))

    def has(self, key: str) -> bool:
        return bool(self.meta["files"].get(key))

    def path(self, key: str) -> Path:
        """Path of a listed file after checking it exists and matches its sha256."""
        entry = self.meta["files"].get(key)
        if not entry:
            raise StitchError(f"pack {self.name!r} has no {key!r} file")
        p = self.root / entry["path"]
        how = entry.get("how_to_get") or self.meta.get("how_to_get") or "see the pack's README"
        if not p.is_file():
            raise StitchError(f"pack {self.name!r}: missing {p} ({how})")
        if key not in self._verified:
            if sha256_of(p) != entry["sha256"]:  # a string of 64 hex digits (check_hashes)
                raise StitchError(f"pack {self.name!r}: {p} is corrupt (sha256 mismatch); {how}")
            for extra in entry.get("config", []) or []:
                if not (self.root / extra).is_file():
                    raise StitchError(f"pack {self.name!r}: missing {self.root / extra} ({how})")
            self._verified.add(key)
        return p

    def generator(self, device: str | torch.device = "cpu"):
        from stitch.models.native import load_native

        return load_native(self.path("generator"), device=device, kind="generator")

    def encoder(self, device: str | torch.device = "cpu"):
        from stitch.models.native import load_native

        return load_native(self.path("encoder"), device=device, kind="encoder")

    @property
    def has_lpips(self) -> bool:
        """The pack ships both LPIPS files (:meth:`lpips`)."""
        return self.has("lpips_backbone") and self.has("lpips_heads")

    def lpips(self, device: str | torch.device = "cpu"):
        """LPIPS(alex) when the pack ships both its files, else None (callers fall back and say so)."""
        if not self.has_lpips:
            return None
        from stitch.models.lpips import load_lpips

        return load_lpips(self.path("lpips_backbone"), self.path("lpips_heads"), net="alex", device=device)

    def verify(self) -> None:
        """Every listed file exists and matches its sha256 (reads them all)."""
        for key, entry in self.meta["files"].items():
            if entry:
                self.path(key)

    def check_files(self) -> None:
        """Every listed file and its config files exist (no hashing: cheap enough for every Snakefile parse)."""
        how = self.meta.get("how_to_get") or "see the pack's README"
        for key, entry in self.meta["files"].items():
            for rel in [entry["path"], *(entry.get("config") or [])] if entry else []:
                if not (self.root / rel).is_file():
                    raise StitchError(f"pack {self.name!r}: missing {self.root / rel} (files.{key}); {how}")

    def direction_names(self) -> list[str]:
        """Names of the pack's edit directions, read from the safetensors header only (cheap; no hashing)."""
        from safetensors import SafetensorError, safe_open

        p = self.root / self.meta["files"]["directions"]["path"]
        try:
            with safe_open(str(p), framework="numpy") as f:
                return sorted(f.keys())
        except (SafetensorError, OSError) as e:
            how = self.meta.get("how_to_get") or "see the pack's README"
            raise StitchError(f"pack {self.name!r}: {p} is unreadable ({str(e).splitlines()[0]}); {how}") from None

    @cached_property
    def directions(self) -> dict[str, torch.Tensor]:
        """Edit directions name -> (num_ws, w_dim) float32."""
        from safetensors.torch import load_file

        p = self.path("directions")
        out = {k: v.float() for k, v in load_file(str(p)).items()}
        shape = (int(self.meta["num_ws"]), int(self.meta["w_dim"]))
        for k, v in out.items():
            if tuple(v.shape) != shape:
                raise StitchError(f"{p}: direction {k!r} has shape {tuple(v.shape)}, expected {shape}")
        return out


def check_hashes(files: dict, where: Path) -> None:
    """Every listed file has a sha256 that is a string of 64 hex digits (YAML reads an unquoted all-digit hash as
    an integer, which would otherwise skip the integrity check)."""
    for key, entry in files.items():
        want = entry.get("sha256") if isinstance(entry, dict) else None
        if entry and not (isinstance(want, str) and SHA256.fullmatch(want)):
            number = isinstance(want, (int, float))
            what = f"the number {want}" if number else repr(want)
            why = " (YAML reads an unquoted all-digit hash as a number)" if number else ""
            raise StitchError(f"{where}: files.{key}.sha256 is {what}, not a string of 64 lower-case hex digits{why}; "
                              "write it quoted, sha256: '<64 hex digits>', or rewrite the manifest with "
                              "stitch.packs.write_manifest")


def write_manifest(root: str | Path, meta: dict) -> Path:
    """Fill in sha256 for every listed file and write ``pack.yaml``."""
    root = Path(root)
    meta = json.loads(json.dumps(meta))
    for key, entry in meta["files"].items():
        if entry:
            entry["sha256"] = sha256_of(root / entry["path"])
    out = root / "pack.yaml"
    write_text(out, yaml.safe_dump(meta, sort_keys=False))
    return out


def save_directions(path: str | Path, directions: dict[str, torch.Tensor]) -> None:
    from safetensors.torch import save_file

    with atomic_path(path) as tmp:
        save_file({k: v.detach().float().contiguous() for k, v in directions.items()}, str(tmp))


def make_random_pack(root: str | Path, resolution: int = 32, seed: int = 0, name: str = "tiny") -> Pack:
    """A tiny pack with RANDOM weights, for tests only (fast, exercises every pipeline stage)."""
    from stitch.models import Encoder4Editing, EncoderConfig, Generator, GeneratorConfig
    from stitch.models.native import save_model

    import torch

    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    # channel_base // resolution feature maps at the top layer: at least 2 at 1024 px (512 gave 0); unchanged to 256 px
    gcfg = GeneratorConfig(z_dim=32, w_dim=32, img_resolution=resolution, mapping_layers=2,
                           channel_base=max(512, 2 * resolution), channel_max=32)
    ecfg = EncoderConfig(input_size=resolution, stage_channels=(8, 8, 16, 16), stage_units=(1, 1, 1, 1),
                         num_ws=gcfg.num_ws, w_dim=gcfg.w_dim, se_reduction=4)
    save_model(Generator(gcfg), root / "generator.safetensors")
    save_model(Encoder4Editing(ecfg), root / "encoder.safetensors")
    g = torch.Generator().manual_seed(seed)
    dirs = {n: torch.randn(1, gcfg.w_dim, generator=g).repeat(gcfg.num_ws, 1) * 0.1 for n in ("age", "gender", "smile")}
    save_directions(root / "directions.safetensors", dirs)
    meta = {
        "name": name, "resolution": resolution, "num_ws": gcfg.num_ws, "w_dim": gcfg.w_dim,
        "align_scale": 1.0, "encoder_input": resolution,
        "licence": "test-only random weights", "provenance": "stitch.packs.make_random_pack",
        "files": {
            "generator": {"path": "generator.safetensors", "config": ["generator.json"]},
            "encoder": {"path": "encoder.safetensors", "config": ["encoder.json"]},
            "directions": {"path": "directions.safetensors"},
        },
        "defaults": {"pti": {"lr": 3e-4, "epochs": 2}, "stitching": {"max_steps": 3}},
    }
    write_manifest(root, meta)
    return Pack.open(root)
