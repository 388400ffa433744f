"""Stitch's own model format: ``<name>.safetensors`` (weights) + ``<name>.json`` (class + constructor args).

Nothing in these files is executable; loading rebuilds the module from the JSON config and copies tensors
by name with a strict key check. The round trip is bit-exact.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch
import torch.nn as nn
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from stitch.errors import StitchError
from stitch.models.e4e import EncoderConfig, Encoder4Editing
from stitch.models.stylegan2 import Generator, GeneratorConfig

FORMAT_VERSION = 1
KINDS = {
    "generator": (Generator, GeneratorConfig),
    "encoder": (Encoder4Editing, EncoderConfig),
}


def _kind_of(model: nn.Module) -> str:
    for kind, (cls, _) in KINDS.items():
        if isinstance(model, cls):
            return kind
    raise TypeError(f"cannot save {type(model).__name__}: not a Stitch model class")


def weights_path(path: str | Path) -> Path:
    p = Path(path)
    return p if p.suffix == ".safetensors" else p.with_suffix(".safetensors")


def config_path(path: str | Path) -> Path:
    return weights_path(path).with_suffix(".json")


def save_model(model: nn.Module, path: str | Path, extra: dict | None = None) -> Path:
    """Write ``path`` (.safetensors) and its ``.json`` config atomically; returns the weights path."""
    kind = _kind_of(model)
    wpath, cpath = weights_path(path), config_path(path)
    wpath.parent.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().cpu().contiguous().clone() for k, v in model.state_dict().items()}
    meta = {"format": "stitch", "version": FORMAT_VERSION, "kind": kind, "config": model.cfg.to_dict()}
    if extra:
        meta["extra"] = extra
    _write_pair(tensors, meta, wpath, cpath, {"stitch_kind": kind})
    return wpath


def _write_pair(tensors: dict, meta: dict, wpath: Path, cpath: Path, metadata: dict | None = None) -> None:
    """Weights and their JSON config through temporary files renamed into place; on any failure (a full disk)
    the temporary files are removed, so nothing half-written remains."""
    tmp_w, tmp_c = wpath.with_name(wpath.name + ".tmp"), cpath.with_name(cpath.name + ".tmp")
    try:
        save_file(tensors, str(tmp_w), metadata=metadata)
        tmp_c.write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
        os.replace(tmp_w, wpath)
        os.replace(tmp_c, cpath)
    finally:
        tmp_w.unlink(missing_ok=True)
        tmp_c.unlink(missing_ok=True)


def read_config(path: str | Path) -> dict:
    cpath = config_path(path)
    if not cpath.is_file():
        raise StitchError(f"{cpath}: missing config JSON next to {weights_path(path).name}")
    try:
        meta = json.loads(cpath.read_text())
    except json.JSONDecodeError as e:
        raise StitchError(f"{cpath}: not valid JSON ({e.msg} at line {e.lineno})") from None
    if meta.get("format") != "stitch" or meta.get("kind") not in KINDS:
        raise StitchError(f"{cpath}: not a Stitch model config (expected format 'stitch' and kind in {sorted(KINDS)})")
    return meta


def load_state_strict(model: nn.Module, state: dict[str, torch.Tensor], source: str | Path,
                      what: str = "the architecture", optional_suffixes: tuple[str, ...] = ()) -> None:
    """Copy ``state`` into ``model``; any missing/unexpected key or shape mismatch is a one-line error. Model keys
    ending in ``optional_suffixes`` may be absent from ``state`` (they keep the model's values)."""
    own = model.state_dict()
    missing = sorted(k for k in set(own) - set(state) if not k.endswith(optional_suffixes))
    unexpected = sorted(set(state) - set(own))
    if missing or unexpected:
        raise StitchError(
            f"{source}: weights do not match {what} "
            f"(missing {len(missing)}: {missing[:4]}; unexpected {len(unexpected)}: {unexpected[:4]})"
        )
    bad = [k for k in state if tuple(own[k].shape) != tuple(state[k].shape)]
    if bad:
        k = bad[0]
        raise StitchError(
            f"{source}: {len(bad)} tensors of {what} have the wrong shape, e.g. {k}: {tuple(state[k].shape)} "
            f"!= expected {tuple(own[k].shape)}"
        )
    with torch.no_grad():
        for k, v in state.items():
            own[k].copy_(v.to(own[k].dtype))


def load_native(path: str | Path, device: str | torch.device = "cpu", kind: str | None = None) -> nn.Module:
    """Load a model saved by :func:`save_model`; ``kind`` ('generator'/'encoder') checks what it is."""
    wpath = weights_path(path)
    if not wpath.is_file():
        raise StitchError(f"{wpath}: file not found")
    meta = read_config(wpath)
    if kind is not None and meta["kind"] != kind:
        raise StitchError(f"{wpath}: holds a {meta['kind']}, expected a {kind}")
    cls, cfg_cls = KINDS[meta["kind"]]
    try:
        cfg = cfg_cls.from_dict(meta["config"])
    except (TypeError, ValueError) as e:
        raise StitchError(f"{config_path(wpath)}: invalid {meta['kind']} config ({e})") from None
    try:
        state = load_file(str(wpath))
    except (SafetensorError, OSError, ValueError) as e:
        raise StitchError(f"{wpath}: corrupt or truncated safetensors file ({str(e).splitlines()[0]})") from None
    model = cls(cfg)
    load_state_strict(model, state, wpath)
    return model.eval().requires_grad_(False).to(device)


def save_bundle(models: dict[str, nn.Module], path: str | Path) -> Path:
    """Several models of one kind in one safetensors file (keys ``<name>/<param>``) + a JSON of configs."""
    wpath, cpath = weights_path(path), config_path(path)
    wpath.parent.mkdir(parents=True, exist_ok=True)
    tensors, configs = {}, {}
    for name, model in models.items():
        assert "/" not in name, name
        configs[name] = {"kind": _kind_of(model), "config": model.cfg.to_dict()}
        tensors.update({f"{name}/{k}": v.detach().cpu().contiguous().clone() for k, v in model.state_dict().items()})
    meta = {"format": "stitch-bundle", "version": FORMAT_VERSION, "models": configs}
    _write_pair(tensors, meta, wpath, cpath)
    return wpath


def load_bundle(path: str | Path, device: str | torch.device = "cpu") -> dict[str, nn.Module]:
    """Inverse of :func:`save_bundle`."""
    wpath, cpath = weights_path(path), config_path(path)
    try:
        meta = json.loads(cpath.read_text())
        state = load_file(str(wpath))
    except (OSError, json.JSONDecodeError, SafetensorError, ValueError) as e:
        raise StitchError(f"{wpath}: cannot read model bundle ({str(e).splitlines()[0]})") from None
    if meta.get("format") != "stitch-bundle":
        raise StitchError(f"{cpath}: not a Stitch model bundle")
    out = {}
    for name, entry in meta["models"].items():
        cls, cfg_cls = KINDS[entry["kind"]]
        model = cls(cfg_cls.from_dict(entry["config"]))
        prefix = name + "/"
        load_state_strict(model, {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}, wpath)
        out[name] = model.eval().requires_grad_(False).to(device)
    return out
