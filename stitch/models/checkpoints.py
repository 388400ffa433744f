"""Load official StyleGAN2 / e4e checkpoints into Stitch's models, without executing anything from the file.

Supported sources (the format is detected from the file's bytes, not its extension):

* NVIDIA StyleGAN2-ADA network pickles (``ffhq.pkl`` as used by STIT/PTI): a plain pickle of a dict with
  ``G``, ``D``, ``G_ema``, ``augment_pipe``, ``training_set_kwargs``. Each network is pickled through
  ``torch_utils.persistence`` as ``_reconstruct_persistent_obj(meta)`` where ``meta`` carries the Python source
  of the defining module (which a normal unpickle *executes*), the class name and the module's ``__dict__``.
  It is read here with a restricted unpickler: only an explicit allow-list of globals is resolved, each to an
  inert stand-in (a persistent object becomes a record of class name + state; ``module_src`` is never
  looked at); anything else is refused with a :class:`StitchError` naming the file and the global.
  Tensors are rebuilt from their storages, which torch pickles as nested legacy ``torch.save`` blobs
  (``torch.storage._load_from_bytes``); those are read with ``torch.load(weights_only=True)``.
* rosinality ``stylegan2-pytorch`` checkpoints (``g_ema`` [+ ``latent_avg``, ``args``]), renamed onto the
  NVIDIA layout used by :class:`~stitch.models.stylegan2.Generator`.
* e4e checkpoints (``state_dict`` with ``encoder.*`` / ``decoder.*``, ``latent_avg``, ``opts``): the encoder
  and its rosinality decoder.
* Stitch's own format (``.safetensors`` + ``.json``, see :mod:`stitch.models.native`), a file or a folder
  holding ``generator.safetensors`` / ``encoder.safetensors``.

``.pt`` files are read with ``torch.load(weights_only=True)`` (plus ``argparse.Namespace`` for the ``args`` /
``opts`` entries). Every source tensor must be used: leftovers, missing keys or shape mismatches are errors.
"""

from __future__ import annotations

import argparse
import collections
import io
import logging
import pickle
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from stitch.errors import StitchError
from stitch.models.e4e import Encoder4Editing, EncoderConfig
from stitch.models.native import load_native, load_state_strict, save_model
from stitch.models.ops import setup_filter
from stitch.models.stylegan2 import Generator, GeneratorConfig, generator_num_params

log = logging.getLogger(__name__)

W_AVG_SAMPLES = 10_000
W_AVG_SEED = 0
DEFAULT_TAPS = (1, 3, 3, 1)

_TORCH_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C  # first object of a legacy (non-zip) torch.save file


@dataclass
class LoadedCheckpoint:
    """What :func:`load_checkpoint` found: the models plus provenance for reports."""

    path: Path
    format: str  # 'stitch' | 'nvidia-pkl' | 'rosinality' | 'e4e'
    generator: Generator | None = None
    encoder: Encoder4Editing | None = None
    source_tensors: int = 0  # tensors read from the source (all of them were used)
    notes: list[str] = field(default_factory=list)


# ---------------------------------------------------------------------------------------------------------
# Format sniffing


def _sniff(path: Path) -> str:
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


_EXPECTED = (
    "expected a Stitch .safetensors model, an NVIDIA StyleGAN2-ADA network pickle (.pkl), "
    "or a rosinality/e4e PyTorch checkpoint (.pt)"
)


# ---------------------------------------------------------------------------------------------------------
# Restricted unpickling of NVIDIA network pickles


class PersistentRecord:
    """Inert stand-in for a ``torch_utils.persistence`` object: class name + pickled ``__dict__`` only."""

    __slots__ = ("class_name", "state", "version")

    def __init__(self, class_name: str, state: dict, version: Any) -> None:
        self.class_name, self.state, self.version = class_name, state, version

    def __repr__(self) -> str:
        return f"PersistentRecord({self.class_name})"


class _EasyDict(dict):
    """Stand-in for ``dnnlib.util.EasyDict`` (a dict with attribute access; nothing else)."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


class _TypeMarker:
    """Stand-in for ``torch.Tensor`` / ``torch.nn.Parameter`` when named as a type argument."""


class _NdarrayMarker:
    """Stand-in for ``numpy.ndarray`` (only accepted as the class argument of numpy's ``_reconstruct``)."""


class _BadPickle(Exception):
    """Raised by the stand-ins when the pickle's structure is not what torch/NVIDIA write."""


def _reconstruct_persistent_obj(meta: Any) -> PersistentRecord:
    # Never looks at meta['module_src']: that is Python source a normal unpickle would execute.
    if not isinstance(meta, dict) or meta.get("type") != "class":
        raise _BadPickle("persistent object metadata is not a class record")
    class_name, state = meta.get("class_name"), meta.get("state")
    if not isinstance(class_name, str) or not isinstance(state, dict):
        raise _BadPickle("persistent object without class_name/state")
    return PersistentRecord(class_name, dict(state), meta.get("version"))


def _load_storage_from_bytes(b: Any) -> Any:
    if not isinstance(b, (bytes, bytearray)):
        raise _BadPickle("tensor storage is not a bytes blob")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            st = torch.load(io.BytesIO(bytes(b)), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        m = re.search(r"GLOBAL ([\w.]+)", str(e))
        raise _BadPickle(
            f"refused global '{m.group(1)}' inside a tensor storage blob" if m else f"bad tensor storage blob ({_first_line(e)})"
        ) from None
    except Exception as e:
        raise _BadPickle(f"bad tensor storage blob ({_first_line(e)})") from None
    if not isinstance(st, (torch.TypedStorage, torch.UntypedStorage)):
        raise _BadPickle(f"tensor storage blob holds a {type(st).__name__}, not a storage")
    return st


def _rebuild_tensor_v2(storage, offset, size, stride, requires_grad=False, hooks=None, metadata=None) -> torch.Tensor:
    if not isinstance(storage, torch.TypedStorage):
        raise _BadPickle("tensor without a typed storage")
    if not (isinstance(offset, int) and isinstance(size, tuple) and isinstance(stride, tuple) and len(size) == len(stride)):
        raise _BadPickle("malformed tensor metadata")
    if not all(isinstance(v, int) and v >= 0 for v in (*size, *stride)) or offset < 0:
        raise _BadPickle("malformed tensor size/stride")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        numel = storage.size()
    last = offset + sum((s - 1) * st for s, st in zip(size, stride)) if all(s > 0 for s in size) else offset - 1
    if last >= numel:
        raise _BadPickle("tensor extends past the end of its storage")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t = torch.empty((0,), dtype=storage.dtype)
        t.set_(storage._untyped_storage, offset, size, stride)
    return t


def _rebuild_parameter(data, requires_grad=False, hooks=None, state=None) -> torch.Tensor:
    if not isinstance(data, torch.Tensor):
        raise _BadPickle("parameter without tensor data")
    return data


def _rebuild_from_type_v2(func, new_type, args, state) -> Any:
    if func not in (_rebuild_tensor_v2, _rebuild_parameter) or not isinstance(args, tuple):
        raise _BadPickle("unexpected tensor subclass rebuild")
    return func(*args)


def _np_reconstruct(cls, shape, dtype_code):
    if cls is not _NdarrayMarker:
        raise _BadPickle("numpy reconstruct of a non-ndarray class")
    return np.ndarray.__new__(np.ndarray, shape, dtype_code)


def _np_scalar(dtype, data=None):
    if not isinstance(dtype, np.dtype) or dtype.hasobject or not isinstance(data, (bytes, type(None))):
        raise _BadPickle("unexpected numpy scalar")
    return np.frombuffer(data or b"", dtype=dtype, count=1)[0] if data else dtype.type()


def _np_dtype(spec, align=False, copy=False):
    d = np.dtype(str(spec))
    if d.hasobject:
        raise _BadPickle("object dtype not allowed")
    return d


def _safe_set(items=()):
    return set(items)


def _safe_frozenset(items=()):
    return frozenset(items)


def _safe_ordered_dict(items=()):
    return collections.OrderedDict(items)


def _torch_size(items=()):
    return tuple(items)


_NUMPY_GLOBALS: dict[str, Callable] = {"_reconstruct": _np_reconstruct, "scalar": _np_scalar}
_PICKLE_ALLOWED: dict[tuple[str, str], Any] = {
    ("torch_utils.persistence", "_reconstruct_persistent_obj"): _reconstruct_persistent_obj,
    ("dnnlib.util", "EasyDict"): _EasyDict,
    ("dnnlib", "EasyDict"): _EasyDict,
    ("collections", "OrderedDict"): _safe_ordered_dict,
    ("builtins", "set"): _safe_set,
    ("builtins", "frozenset"): _safe_frozenset,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
    ("torch._tensor", "_rebuild_from_type_v2"): _rebuild_from_type_v2,
    ("torch.storage", "_load_from_bytes"): _load_storage_from_bytes,
    ("torch", "Tensor"): _TypeMarker,
    ("torch.nn.parameter", "Parameter"): _TypeMarker,
    ("torch", "Size"): _torch_size,
    ("numpy", "ndarray"): _NdarrayMarker,
    ("numpy", "dtype"): _np_dtype,
}
for _mod in ("numpy.core.multiarray", "numpy._core.multiarray"):
    for _name, _fn in _NUMPY_GLOBALS.items():
        _PICKLE_ALLOWED[(_mod, _name)] = _fn


class RestrictedUnpickler(pickle.Unpickler):
    """Resolves only :data:`_PICKLE_ALLOWED` globals; refuses everything else before it can run."""

    def __init__(self, file, source: Path) -> None:
        super().__init__(file)
        self.source = source

    def find_class(self, module: str, name: str) -> Any:
        fn = _PICKLE_ALLOWED.get((module, name))
        if fn is None:
            raise StitchError(
                f"{self.source}: refused to unpickle global '{module}.{name}' "
                "(only tensors, containers and StyleGAN2-ADA persistent records are allowed)"
            )
        return fn

    def persistent_load(self, pid: Any) -> Any:
        raise StitchError(f"{self.source}: refused pickle persistent id (not a plain network pickle)")


def _first_line(e: BaseException) -> str:
    s = str(e).strip().splitlines()
    return f"{type(e).__name__}: {s[0]}" if s else type(e).__name__


def read_network_pickle(path: str | Path) -> Any:
    """Unpickle an NVIDIA network pickle with :class:`RestrictedUnpickler` (no code from the file runs)."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            return RestrictedUnpickler(f, path).load()
    except StitchError:
        raise
    except _BadPickle as e:
        raise StitchError(f"{path}: tampered or unsupported network pickle ({e})") from None
    except (EOFError, pickle.UnpicklingError) as e:
        raise StitchError(f"{path}: truncated or corrupt pickle ({_first_line(e)}); {_EXPECTED}") from None
    except Exception as e:  # malformed opcodes surface as many exception types
        raise StitchError(f"{path}: corrupt network pickle ({_first_line(e)})") from None


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


_G_ARGS = ("z_dim", "c_dim", "w_dim", "img_resolution", "img_channels", "mapping_kwargs", "synthesis_kwargs")


def nvidia_generator_config(rec: PersistentRecord, source: Path) -> tuple[GeneratorConfig, list[str]]:
    """GeneratorConfig from a StyleGAN2-ADA ``Generator`` record's ``init_args`` / ``init_kwargs``."""
    st = rec.state
    kw = dict(st.get("_init_kwargs", st.get("init_kwargs")) or {})
    args = tuple(st.get("_init_args", st.get("init_args")) or ())
    if len(args) > len(_G_ARGS):
        raise StitchError(f"{source}: G_ema has {len(args)} positional init args, expected at most {len(_G_ARGS)}")
    for k, v in zip(_G_ARGS, args):
        kw.setdefault(k, v)
    notes: list[str] = []
    unknown = sorted(set(kw) - set(_G_ARGS))
    if unknown:
        raise StitchError(f"{source}: unsupported StyleGAN2-ADA generator option(s) {unknown}")
    for k in ("z_dim", "w_dim", "img_resolution", "img_channels"):
        if not isinstance(kw.get(k), (int, np.integer)):
            raise StitchError(f"{source}: G_ema init_kwargs lack an integer {k!r}")
    if int(kw.get("c_dim", 0) or 0) != 0:
        raise StitchError(f"{source}: conditional generator (c_dim={kw['c_dim']}) is not supported; expected c_dim 0")
    mk = dict(kw.get("mapping_kwargs") or {})
    sk = dict(kw.get("synthesis_kwargs") or {})

    def take(d: dict, key: str, default: Any, allowed: Callable[[Any], bool] | None = None, what: str = "") -> Any:
        v = d.pop(key, default)
        if v is None and default is not None:
            v = default
        if allowed is not None and not allowed(v):
            raise StitchError(f"{source}: unsupported {what or key}={v!r} in G_ema init_kwargs")
        return v

    w_dim = int(kw["w_dim"])
    num_layers = int(take(mk, "num_layers", 8))
    lr_mul = float(take(mk, "lr_multiplier", 0.01))
    w_avg_beta = mk.pop("w_avg_beta", 0.995)
    if w_avg_beta is None:
        raise StitchError(f"{source}: generator without w_avg (mapping w_avg_beta=None) is not supported")
    take(mk, "activation", "lrelu", lambda v: v == "lrelu", "mapping activation")
    take(mk, "layer_features", None, lambda v: v is None or int(v) == w_dim, "mapping layer_features")
    mk.pop("embed_features", None)  # unused when c_dim == 0
    channel_base = int(take(sk, "channel_base", 32768))
    channel_max = int(take(sk, "channel_max", 512))
    conv_clamp = take(sk, "conv_clamp", None)
    fp16 = int(take(sk, "num_fp16_res", 0) or 0)
    if fp16:
        notes.append(f"num_fp16_res={fp16} ignored: Stitch runs the generator in fp32 (= force_fp32)")
    sk.pop("fp16_channels_last", None)
    take(sk, "architecture", "skip", lambda v: v == "skip", "synthesis architecture")
    taps = take(sk, "resample_filter", list(DEFAULT_TAPS), lambda v: np.asarray(v).ndim == 1, "resample_filter")
    take(sk, "use_noise", True, lambda v: v is True, "use_noise")
    take(sk, "activation", "lrelu", lambda v: v == "lrelu", "synthesis activation")
    take(sk, "kernel_size", 3, lambda v: v == 3, "kernel_size")
    leftover = sorted(mk) + sorted(sk)
    if leftover:
        raise StitchError(f"{source}: unsupported StyleGAN2-ADA generator option(s) {leftover}")
    try:
        cfg = GeneratorConfig(
            z_dim=int(kw["z_dim"]),
            w_dim=w_dim,
            img_resolution=int(kw["img_resolution"]),
            img_channels=int(kw["img_channels"]),
            mapping_layers=num_layers,
            mapping_lr_mul=lr_mul,
            channel_base=channel_base,
            channel_max=channel_max,
            conv_clamp=None if conv_clamp is None else float(conv_clamp),
            w_avg_beta=float(w_avg_beta),
            resample_taps=tuple(int(t) if float(t).is_integer() else float(t) for t in np.asarray(taps).tolist()),
        )
    except ValueError as e:
        raise StitchError(f"{source}: invalid generator configuration ({e})") from None
    return cfg, notes


def _load_nvidia_pickle(path: Path) -> LoadedCheckpoint:
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


# ---------------------------------------------------------------------------------------------------------
# PyTorch .pt files (rosinality / e4e)


def _torch_load(path: Path) -> Any:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with torch.serialization.safe_globals([argparse.Namespace]):
                return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        m = re.search(r"GLOBAL ([\w.]+)", str(e))
        if m:
            raise StitchError(
                f"{path}: refused to load global '{m.group(1)}' (only tensors, containers and "
                "argparse.Namespace are allowed in a checkpoint)"
            ) from None
        raise StitchError(f"{path}: truncated or corrupt PyTorch checkpoint ({_first_line(e)})") from None
    except Exception as e:
        raise StitchError(f"{path}: truncated or corrupt PyTorch checkpoint ({_first_line(e)})") from None


def _opts_dict(opts: Any) -> dict:
    if opts is None:
        return {}
    if isinstance(opts, argparse.Namespace):
        return dict(vars(opts))
    if isinstance(opts, dict):
        return dict(opts)
    return {}


def _tensor_dict(d: Any, what: str, source: Path) -> dict[str, torch.Tensor]:
    if not isinstance(d, dict) or not d:
        raise StitchError(f"{source}: {what} is not a state dict")
    bad = [k for k, v in d.items() if not isinstance(k, str) or not isinstance(v, torch.Tensor)]
    if bad:
        raise StitchError(f"{source}: {what} has non-tensor entries, e.g. {bad[0]!r}")
    return d


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
    source = Path(source)
    sd = dict(sd)
    used: set[str] = set()
    notes: list[str] = []

    def get(key: str) -> torch.Tensor:
        if key not in sd:
            raise StitchError(f"{source}: rosinality generator lacks {key!r}")
        used.add(key)
        return sd[key]

    n_mlp = 0
    while f"style.{n_mlp + 1}.weight" in sd:
        n_mlp += 1
    if n_mlp == 0:
        raise StitchError(f"{source}: not a rosinality StyleGAN2 generator (no 'style.1.weight')")
    w_dim, z_dim = get("style.1.weight").shape
    n_rgb = 0
    while f"to_rgbs.{n_rgb}.conv.weight" in sd:
        n_rgb += 1
    log_size = n_rgb + 2
    res_max = 2**log_size
    # Channels per resolution from the conv weights (1, out, in, k, k).
    ch = {4: get("conv1.conv.weight").shape[1]}
    for k in range(n_rgb):
        ch[2 ** (k + 3)] = get(f"convs.{2 * k}.conv.weight").shape[1]
    cmax = ch[4]
    cm = None
    if args:
        if "size" in args and int(args["size"]) != res_max:
            raise StitchError(f"{source}: args.size={args['size']} but the weights are for {res_max} px")
        if "latent" in args and int(args["latent"]) != w_dim:
            raise StitchError(f"{source}: args.latent={args['latent']} but the weights have w_dim {w_dim}")
        if "n_mlp" in args and int(args["n_mlp"]) != n_mlp:
            raise StitchError(f"{source}: args.n_mlp={args['n_mlp']} but the weights have {n_mlp} mapping layers")
        cm = args.get("channel_multiplier")
    if cm is not None:
        channel_base, channel_max = 16384 * int(cm), 512
    else:
        below = [r for r in sorted(ch) if ch[r] < cmax]
        channel_base = ch[below[0]] * below[0] if below else max(cmax * res_max, 32768 if cmax == 512 else 0)
        channel_max = cmax
    # Blur / upsample kernels: validated against the resample taps, then dropped (recomputed by the model).
    taps = DEFAULT_TAPS
    ref = setup_filter(taps) * 4
    for key in [f"convs.{2 * k}.conv.blur.kernel" for k in range(n_rgb)] + [
        f"to_rgbs.{k}.upsample.kernel" for k in range(n_rgb)
    ]:
        kern = get(key)
        if tuple(kern.shape) != tuple(ref.shape) or not torch.allclose(kern.float(), ref, atol=1e-6):
            raise StitchError(f"{source}: {key} is not the standard [1,3,3,1] blur kernel; unsupported")
    try:
        cfg = GeneratorConfig(
            z_dim=int(z_dim),
            w_dim=int(w_dim),
            img_resolution=res_max,
            img_channels=int(get("to_rgb1.conv.weight").shape[1]),
            mapping_layers=n_mlp,
            mapping_lr_mul=lr_mlp,
            channel_base=int(channel_base),
            channel_max=int(channel_max),
            conv_clamp=None,
            resample_taps=taps,
        )
    except ValueError as e:
        raise StitchError(f"{source}: invalid generator architecture ({e})") from None
    wrong = {r: (c, cfg.channels(r)) for r, c in ch.items() if cfg.channels(r) != c}
    if wrong:
        raise StitchError(
            f"{source}: channel layout {ch} does not fit channel_base={channel_base}/channel_max={channel_max} "
            f"(resolution: (found, expected) {wrong})"
        )

    out: dict[str, torch.Tensor] = {}
    for i in range(n_mlp):
        out[f"mapping.fc{i}.weight"] = get(f"style.{i + 1}.weight")
        out[f"mapping.fc{i}.bias"] = get(f"style.{i + 1}.bias")
    out["synthesis.b4.const"] = get("input.input").squeeze(0)
    filt = setup_filter(taps)

    def styled(src: str, dst: str, noise_idx: int) -> None:
        out[f"{dst}.weight"] = get(f"{src}.conv.weight").squeeze(0)
        out[f"{dst}.affine.weight"] = get(f"{src}.conv.modulation.weight")
        out[f"{dst}.affine.bias"] = get(f"{src}.conv.modulation.bias")
        out[f"{dst}.noise_strength"] = get(f"{src}.noise.weight").reshape([])
        out[f"{dst}.noise_const"] = get(f"noises.noise_{noise_idx}").reshape(get(f"noises.noise_{noise_idx}").shape[-2:])
        out[f"{dst}.bias"] = get(f"{src}.activate.bias")
        out[f"{dst}.resample_filter"] = filt.clone()

    def torgb(src: str, dst: str) -> None:
        out[f"{dst}.weight"] = get(f"{src}.conv.weight").squeeze(0)
        out[f"{dst}.affine.weight"] = get(f"{src}.conv.modulation.weight")
        out[f"{dst}.affine.bias"] = get(f"{src}.conv.modulation.bias")
        out[f"{dst}.bias"] = get(f"{src}.bias").reshape(-1)

    styled("conv1", "synthesis.b4.conv1", 0)
    torgb("to_rgb1", "synthesis.b4.torgb")
    out["synthesis.b4.resample_filter"] = filt.clone()
    for k in range(n_rgb):
        r = 2 ** (k + 3)
        styled(f"convs.{2 * k}", f"synthesis.b{r}.conv0", 2 * k + 1)
        styled(f"convs.{2 * k + 1}", f"synthesis.b{r}.conv1", 2 * k + 2)
        torgb(f"to_rgbs.{k}", f"synthesis.b{r}.torgb")
        out[f"synthesis.b{r}.resample_filter"] = filt.clone()
    leftovers = sorted(set(sd) - used)
    if leftovers:
        raise StitchError(f"{source}: {len(leftovers)} rosinality tensor(s) not understood: {leftovers[:6]}")

    if latent_avg is not None:
        la = latent_avg.detach().float().reshape(-1, latent_avg.shape[-1])
        if la.shape[-1] != w_dim:
            raise StitchError(f"{source}: latent_avg has width {la.shape[-1]}, expected w_dim {w_dim}")
        if torch.equal(la, la[:1].expand_as(la)):
            out["mapping.w_avg"] = la[0].clone()
        else:
            notes.append("latent_avg rows differ: w_avg = their mean")
            out["mapping.w_avg"] = la.mean(0)
    return cfg, out, notes


def _estimate_w_avg(g: Generator) -> torch.Tensor:
    gen = torch.Generator().manual_seed(W_AVG_SEED)
    z = torch.randn(W_AVG_SAMPLES, g.z_dim, generator=gen)
    with torch.no_grad():
        return g.mapping(z)[:, 0].mean(0)


def _build_rosinality_generator(
    sd: dict, source: Path, latent_avg: torch.Tensor | None, args: dict | None
) -> tuple[Generator, list[str]]:
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


def _load_rosinality(path: Path, ckpt: dict) -> LoadedCheckpoint:
    if "g_ema" in ckpt:
        sd = _tensor_dict(ckpt["g_ema"], "g_ema", path)
        ignored = sorted(k for k in ckpt if k not in ("g_ema", "latent_avg", "args"))
    else:  # a bare generator state dict
        sd = _tensor_dict(ckpt, "state dict", path)
        ignored = []
    latent_avg = ckpt.get("latent_avg") if "g_ema" in ckpt else None
    if latent_avg is not None and not isinstance(latent_avg, torch.Tensor):
        raise StitchError(f"{path}: latent_avg is a {type(latent_avg).__name__}, expected a tensor")
    args = _opts_dict(ckpt.get("args")) if "g_ema" in ckpt else {}
    g, notes = _build_rosinality_generator(sd, path, latent_avg, args)
    if ignored:
        notes.append(f"ignored checkpoint entries {ignored} (only g_ema is used)")
    n = len(sd) + (latent_avg is not None)
    return LoadedCheckpoint(path, "rosinality", generator=g, source_tensors=n, notes=notes)


def infer_encoder_config(sd: dict[str, torch.Tensor], source: str | Path) -> EncoderConfig:
    """EncoderConfig of an e4e ``encoder.*`` state dict (prefix stripped), from the tensor shapes."""
    source = Path(source)

    def shape(key: str) -> tuple[int, ...]:
        if key not in sd:
            raise StitchError(f"{source}: e4e encoder lacks {key!r}")
        return tuple(sd[key].shape)

    units = []
    while f"body.{len(units)}.res_layer.1.weight" in sd:
        depth, in_c = shape(f"body.{len(units)}.res_layer.1.weight")[:2]
        hidden = shape(f"body.{len(units)}.res_layer.5.fc1.weight")[0]
        units.append((in_c, depth, hidden))
    stages: list[list] = []
    for u in units:
        if stages and stages[-1][0] == u[1]:
            stages[-1][1] += 1
        else:
            stages.append([u[1], 1])
    if len(stages) != 4:
        raise StitchError(f"{source}: e4e backbone has {len(stages)} stages by channel count, expected 4")
    stage_channels = tuple(int(s[0]) for s in stages)
    stage_units = tuple(int(s[1]) for s in stages)
    if shape("input_layer.0.weight")[0] != stage_channels[0]:
        raise StitchError(f"{source}: e4e input layer width does not match the first stage")
    dmax, hmax = max((u[1], u[2]) for u in units)
    red = next((r for r in range(max(dmax // hmax, 1), dmax + 1) if all(max(d // r, 1) == h for _, d, h in units)), None)
    if red is None:
        raise StitchError(f"{source}: e4e squeeze-excitation widths fit no single reduction ratio")
    num_ws = 0
    while f"styles.{num_ws}.linear.weight" in sd:
        num_ws += 1
    if num_ws == 0:
        raise StitchError(f"{source}: e4e encoder has no style heads ('styles.0.linear.weight')")
    w_dim = shape("styles.0.linear.weight")[0]
    pools = []
    for i in range(num_ws):
        n = 0
        while f"styles.{i}.convs.{2 * n}.weight" in sd:
            n += 1
        pools.append(n)
    p0 = pools[0]
    if any(p not in (p0, p0 + 1, p0 + 2) for p in pools) or pools != sorted(pools) or p0 < 1:
        raise StitchError(f"{source}: e4e style heads have an unexpected pyramid layout {pools}")
    coarse = pools.count(p0)
    middle = coarse + pools.count(p0 + 1)
    try:
        return EncoderConfig(
            input_size=16 * 2**p0,
            stage_channels=stage_channels,
            stage_units=stage_units,
            num_ws=num_ws,
            w_dim=int(w_dim),
            coarse_ind=coarse,
            middle_ind=middle,
            se_reduction=int(red),
        )
    except ValueError as e:
        raise StitchError(f"{source}: invalid e4e encoder architecture ({e})") from None


def _load_e4e(path: Path, ckpt: dict) -> LoadedCheckpoint:
    sd = _tensor_dict(ckpt["state_dict"], "state_dict", path)
    opts = _opts_dict(ckpt.get("opts"))
    enc_type = opts.get("encoder_type")
    if enc_type is not None and enc_type != "Encoder4Editing":
        raise StitchError(f"{path}: encoder_type {enc_type!r} is not supported; expected an e4e 'Encoder4Editing'")
    enc_sd = {k[len("encoder."):]: v for k, v in sd.items() if k.startswith("encoder.")}
    dec_sd = {k[len("decoder."):]: v for k, v in sd.items() if k.startswith("decoder.")}
    leftovers = sorted(k for k in sd if not k.startswith(("encoder.", "decoder.")))
    if leftovers:
        raise StitchError(f"{path}: {len(leftovers)} state_dict tensor(s) are neither encoder nor decoder: {leftovers[:6]}")
    if not enc_sd or not dec_sd:
        raise StitchError(f"{path}: e4e checkpoint needs both encoder.* and decoder.* weights")
    latent_avg = ckpt.get("latent_avg")
    start_avg = opts.get("start_from_latent_avg", True)
    if latent_avg is not None and not isinstance(latent_avg, torch.Tensor):
        raise StitchError(f"{path}: latent_avg is a {type(latent_avg).__name__}, expected a tensor")
    if latent_avg is None and start_avg:
        raise StitchError(f"{path}: e4e checkpoint has no latent_avg (needed with start_from_latent_avg)")
    notes: list[str] = []
    ecfg = infer_encoder_config(enc_sd, path)
    enc = Encoder4Editing(ecfg)
    state = dict(enc_sd)
    if start_avg:
        la = latent_avg.detach().float()
        if la.ndim == 1:
            la = la[None]
        if la.ndim != 2 or la.shape[-1] != ecfg.w_dim or la.shape[0] not in (1, ecfg.num_ws):
            raise StitchError(
                f"{path}: latent_avg has shape {tuple(latent_avg.shape)}, expected ({ecfg.num_ws}, {ecfg.w_dim}) "
                f"or ({ecfg.w_dim},)"
            )
        state["latent_avg"] = la.expand(ecfg.num_ws, ecfg.w_dim).clone()
    else:
        state["latent_avg"] = torch.zeros(ecfg.num_ws, ecfg.w_dim)
        notes.append("start_from_latent_avg is False: encoder latent_avg = 0")
    load_state_strict(enc, state, path)
    dec_args = {"size": opts["stylegan_size"]} if "stylegan_size" in opts else None
    g, gnotes = _build_rosinality_generator(dec_sd, path, latent_avg if latent_avg is not None else None, dec_args)
    if g.num_ws != ecfg.num_ws or g.w_dim != ecfg.w_dim:
        raise StitchError(
            f"{path}: encoder outputs ({ecfg.num_ws}, {ecfg.w_dim}) codes but the decoder takes ({g.num_ws}, {g.w_dim})"
        )
    n = len(sd) + (latent_avg is not None)
    return LoadedCheckpoint(path, "e4e", generator=g, encoder=enc, source_tensors=n, notes=notes + gnotes)


# ---------------------------------------------------------------------------------------------------------
# Public API


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
        return _load_nvidia_pickle(path)
    ckpt = _torch_load(path)
    if not isinstance(ckpt, dict):
        raise StitchError(f"{path}: PyTorch file holds a {type(ckpt).__name__}; {_EXPECTED}")
    sd = ckpt.get("state_dict")
    if isinstance(sd, dict) and any(isinstance(k, str) and k.startswith("encoder.") for k in sd):
        return _load_e4e(path, ckpt)
    if "g_ema" in ckpt or "style.1.weight" in ckpt:
        return _load_rosinality(path, ckpt)
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
        fmt = _sniff(path)
    except OSError as e:
        raise StitchError(f"{path}: cannot read ({_first_line(e)})") from None
    if fmt == "unknown":
        raise StitchError(f"{path}: not a recognised checkpoint; {_EXPECTED}")
    try:
        out = _load_by_format(path, fmt, want)
    except StitchError:
        raise
    except (RuntimeError, ValueError, TypeError, AttributeError, IndexError, KeyError) as e:
        # shapes/types that no official writer produces (e.g. a tampered file) surface here
        raise StitchError(f"{path}: malformed {fmt} checkpoint ({_first_line(e)})") from None
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


# ---------------------------------------------------------------------------------------------------------
# Conversion to Stitch's format


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
    if out.generator is not None:
        g = out.generator
        echo(describe_generator(g))
        wpath = save_model(g, dst / "generator.safetensors", extra=extra)
        g2 = load_native(wpath, kind="generator")
        z = torch.randn(2, g.z_dim, generator=torch.Generator().manual_seed(0))
        with torch.no_grad():
            ws, ws2 = g.mapping(z, truncation_psi=0.7), g2.mapping(z, truncation_psi=0.7)
            d = max(_max_diff(ws, ws2), _max_diff(g.synthesis(ws), g2.synthesis(ws)))
        if d != 0:
            raise StitchError(f"{wpath}: converted generator differs from the source (max abs diff {d:.3g})")
        echo(f"wrote {wpath} (+ .json); reproduces the source on a fixed latent (max abs diff {d})")
        summary["files"].append(str(wpath))
        summary["generator"] = g.cfg.to_dict()
    if out.encoder is not None:
        e = out.encoder
        echo(describe_encoder(e))
        wpath = save_model(e, dst / "encoder.safetensors", extra=extra)
        e2 = load_native(wpath, kind="encoder")
        s = e.cfg.input_size
        x = torch.rand(1, 3, s, s, generator=torch.Generator().manual_seed(0)) * 2 - 1
        with torch.no_grad():
            d = _max_diff(e(x), e2(x))
        if d != 0:
            raise StitchError(f"{wpath}: converted encoder differs from the source (max abs diff {d:.3g})")
        echo(f"wrote {wpath} (+ .json); reproduces the source on a fixed image (max abs diff {d})")
        summary["files"].append(str(wpath))
        summary["encoder"] = e.cfg.to_dict()
    return summary
