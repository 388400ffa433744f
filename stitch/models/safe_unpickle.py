"""Reading pickles without running code from them.

NVIDIA StyleGAN2-ADA network pickles (``ffhq.pkl``) are a plain pickle of a dict with ``G``, ``D``, ``G_ema``,
``augment_pipe``, ``training_set_kwargs``. Each network is pickled through ``torch_utils.persistence`` as
``_reconstruct_persistent_obj(meta)`` where ``meta`` carries the Python source of the defining module (which a
normal unpickle *executes*), the class name and the module's ``__dict__``. :class:`RestrictedUnpickler` resolves
only an explicit allow-list of globals, each to an inert stand-in (a persistent object becomes a
:class:`PersistentRecord` of class name + state; ``module_src`` is never looked at); anything else is refused with
a :class:`StitchError` naming the file and the global. Tensors are rebuilt from their storages, which torch
pickles as nested legacy ``torch.save`` blobs (``torch.storage._load_from_bytes``); those are read with
``torch.load(weights_only=True)``, as are ``.pt`` checkpoints (:func:`torch_load`).
"""

from __future__ import annotations

import argparse
import collections
import io
import pickle
import re
import warnings
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from stitch.errors import StitchError
from stitch.models.sniff import EXPECTED, first_line


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
            f"refused global '{m.group(1)}' inside a tensor storage blob" if m else f"bad tensor storage blob ({first_line(e)})"
        ) from None
    except Exception as e:
        raise _BadPickle(f"bad tensor storage blob ({first_line(e)})") from None
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
        raise StitchError(f"{path}: truncated or corrupt pickle ({first_line(e)}); {EXPECTED}") from None
    except Exception as e:  # malformed opcodes surface as many exception types
        raise StitchError(f"{path}: corrupt network pickle ({first_line(e)})") from None


def torch_load(path: Path) -> Any:
    """``torch.load(weights_only=True)`` of a ``.pt`` file, allowing ``argparse.Namespace`` (rosinality ``args``,
    e4e ``opts``); anything else refused names the global."""
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
        raise StitchError(f"{path}: truncated or corrupt PyTorch checkpoint ({first_line(e)})") from None
    except Exception as e:
        raise StitchError(f"{path}: truncated or corrupt PyTorch checkpoint ({first_line(e)})") from None
