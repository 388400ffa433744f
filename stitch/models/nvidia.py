"""NVIDIA StyleGAN2-ADA network pickles (``ffhq.pkl`` as used by STIT/PTI): ``G_ema`` into a :class:`Generator`.

The pickle is read by :func:`stitch.models.safe_unpickle.read_network_pickle` (no code from the file runs); the
configuration comes from the ``G_ema`` record's constructor arguments, the weights from its parameters and
persistent buffers, which load by name (Stitch's generator uses NVIDIA's layout). Every tensor must be used.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from stitch.errors import StitchError
from stitch.models.native import load_state_strict
from stitch.models.ops import DEFAULT_TAPS
from stitch.models.safe_unpickle import PersistentRecord, read_network_pickle
from stitch.models.sniff import LoadedCheckpoint
from stitch.models.stylegan2 import Generator, GeneratorConfig

_G_ARGS = ("z_dim", "c_dim", "w_dim", "img_resolution", "img_channels", "mapping_kwargs", "synthesis_kwargs")


def _record_tensors(rec: PersistentRecord, source: Path, prefix: str = "", out: dict | None = None) -> dict:
    """Parameters and persistent buffers of a persistent module record, keyed like ``state_dict()``."""
    out = {} if out is None else out
    st = rec.state
    skip = st.get("_non_persistent_buffers_set") or set()
    for group in ("_parameters", "_buffers"):
        entries = st.get(group) or {}
        if not isinstance(entries, dict):
            raise StitchError(f"{source}: {prefix or 'G_ema'} {group} is not a dict (tampered pickle?)")
        for name, t in entries.items():
            if t is None or (group == "_buffers" and name in skip):
                continue
            if not isinstance(t, torch.Tensor):
                raise StitchError(f"{source}: {prefix}{name} is a {type(t).__name__}, not a tensor")
            out[prefix + name] = t
    children = st.get("_modules") or {}
    if not isinstance(children, dict):
        raise StitchError(f"{source}: {prefix or 'G_ema'} _modules is not a dict (tampered pickle?)")
    for name, child in children.items():
        if child is None:
            continue
        if not isinstance(child, PersistentRecord):
            raise StitchError(f"{source}: submodule {prefix}{name} is not a StyleGAN2-ADA persistent module")
        _record_tensors(child, source, f"{prefix}{name}.", out)
    return out


def _init_kwargs(rec: PersistentRecord, source: Path) -> dict:
    """The record's constructor arguments as keywords, checked for what Stitch's generator supports."""
    st = rec.state
    kw = dict(st.get("_init_kwargs", st.get("init_kwargs")) or {})
    args = tuple(st.get("_init_args", st.get("init_args")) or ())
    if len(args) > len(_G_ARGS):
        raise StitchError(f"{source}: G_ema has {len(args)} positional init args, expected at most {len(_G_ARGS)}")
    for k, v in zip(_G_ARGS, args):
        kw.setdefault(k, v)
    unknown = sorted(set(kw) - set(_G_ARGS))
    if unknown:
        raise StitchError(f"{source}: unsupported StyleGAN2-ADA generator option(s) {unknown}")
    for k in ("z_dim", "w_dim", "img_resolution", "img_channels"):
        if not isinstance(kw.get(k), (int, np.integer)):
            raise StitchError(f"{source}: G_ema init_kwargs lack an integer {k!r}")
    if int(kw.get("c_dim", 0) or 0) != 0:
        raise StitchError(f"{source}: conditional generator (c_dim={kw['c_dim']}) is not supported; expected c_dim 0")
    return kw


def _take(source: Path, d: dict, key: str, default: Any, allowed: Callable[[Any], bool] | None = None,
          what: str = "") -> Any:
    """Pop ``key`` from the option dict ``d`` (``default`` when absent or None), refusing values ``allowed`` rejects."""
    v = d.pop(key, default)
    if v is None and default is not None:
        v = default
    if allowed is not None and not allowed(v):
        raise StitchError(f"{source}: unsupported {what or key}={v!r} in G_ema init_kwargs")
    return v


def _mapping_options(mk: dict, w_dim: int, source: Path) -> dict:
    """GeneratorConfig fields from ``mapping_kwargs`` (consumed from ``mk``); ``w_avg_beta`` as found."""
    out = {"mapping_layers": int(_take(source, mk, "num_layers", 8)),
           "mapping_lr_mul": float(_take(source, mk, "lr_multiplier", 0.01))}
    w_avg_beta = mk.pop("w_avg_beta", 0.995)
    if w_avg_beta is None:
        raise StitchError(f"{source}: generator without w_avg (mapping w_avg_beta=None) is not supported")
    out["w_avg_beta"] = w_avg_beta
    _take(source, mk, "activation", "lrelu", lambda v: v == "lrelu", "mapping activation")
    _take(source, mk, "layer_features", None, lambda v: v is None or int(v) == w_dim, "mapping layer_features")
    mk.pop("embed_features", None)  # unused when c_dim == 0
    return out


def _synthesis_options(sk: dict, source: Path, notes: list[str]) -> dict:
    """GeneratorConfig fields from ``synthesis_kwargs`` (consumed from ``sk``; ``conv_clamp`` and ``resample_taps`` as
    found); fp16 settings become notes."""
    out = {"channel_base": int(_take(source, sk, "channel_base", 32768)),
           "channel_max": int(_take(source, sk, "channel_max", 512))}
    out["conv_clamp"] = _take(source, sk, "conv_clamp", None)
    fp16 = int(_take(source, sk, "num_fp16_res", 0) or 0)
    if fp16:
        notes.append(f"num_fp16_res={fp16} ignored: Stitch runs the generator in fp32 (= force_fp32)")
    sk.pop("fp16_channels_last", None)
    _take(source, sk, "architecture", "skip", lambda v: v == "skip", "synthesis architecture")
    taps = _take(source, sk, "resample_filter", list(DEFAULT_TAPS), lambda v: np.asarray(v).ndim == 1,
                 "resample_filter")
    out["resample_taps"] = taps
    _take(source, sk, "use_noise", True, lambda v: v is True, "use_noise")
    _take(source, sk, "activation", "lrelu", lambda v: v == "lrelu", "synthesis activation")
    _take(source, sk, "kernel_size", 3, lambda v: v == 3, "kernel_size")
    return out


def nvidia_generator_config(rec: PersistentRecord, source: Path) -> tuple[GeneratorConfig, list[str]]:
    """GeneratorConfig from a StyleGAN2-ADA ``Generator`` record's ``init_args`` / ``init_kwargs``."""
    kw = _init_kwargs(rec, source)
    notes: list[str] = []
    mk = dict(kw.get("mapping_kwargs") or {})
    sk = dict(kw.get("synthesis_kwargs") or {})
    w_dim = int(kw["w_dim"])
    fields = {**_mapping_options(mk, w_dim, source), **_synthesis_options(sk, source, notes)}
    leftover = sorted(mk) + sorted(sk)
    if leftover:
        raise StitchError(f"{source}: unsupported StyleGAN2-ADA generator option(s) {leftover}")
    taps = np.asarray(fields.pop("resample_taps")).tolist()
    try:  # numbers as found are converted here so a bad one is an invalid configuration
        fields["resample_taps"] = tuple(int(t) if float(t).is_integer() else float(t) for t in taps)
        fields["w_avg_beta"] = float(fields["w_avg_beta"])
        fields["conv_clamp"] = None if fields["conv_clamp"] is None else float(fields["conv_clamp"])
        cfg = GeneratorConfig(z_dim=int(kw["z_dim"]), w_dim=w_dim, img_resolution=int(kw["img_resolution"]),
                              img_channels=int(kw["img_channels"]), **fields)
    except ValueError as e:
        raise StitchError(f"{source}: invalid generator configuration ({e})") from None
    return cfg, notes


def load_nvidia_pickle(path: Path) -> LoadedCheckpoint:
    """The ``G_ema`` generator of a StyleGAN2-ADA network pickle (other entries are ignored, with a note)."""
    data = read_network_pickle(path)
    if not isinstance(data, dict) or "G_ema" not in data:
        got = sorted(map(str, data))[:6] if isinstance(data, dict) else type(data).__name__
        raise StitchError(f"{path}: not a StyleGAN2-ADA network pickle (expected a dict with 'G_ema', got {got})")
    rec = data["G_ema"]
    if not isinstance(rec, PersistentRecord) or rec.class_name != "Generator":
        what = rec.class_name if isinstance(rec, PersistentRecord) else type(rec).__name__
        raise StitchError(f"{path}: G_ema is a {what}, expected a StyleGAN2-ADA Generator")
    cfg, notes = nvidia_generator_config(rec, path)
    state = _record_tensors(rec, path)
    g = Generator(cfg)
    load_state_strict(g, state, path)
    ignored = sorted(k for k in data if k != "G_ema")
    if ignored:
        notes.append(f"ignored pickle entries {ignored} (only G_ema is used)")
    return LoadedCheckpoint(path, "nvidia-pkl", generator=g, source_tensors=len(state), notes=notes)
