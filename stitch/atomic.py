"""Atomic writes: every output file appears whole or not at all (a crash or kill leaves no half-written file).

:func:`atomic_path` is the one place that does temp-file-then-rename; the wrappers below cover the common
cases (text/JSON, ``.npz``, ``.npy``). Anything else (a video container, a memory-mapped array, a figure)
writes to the yielded temporary path itself.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a hidden temporary path beside ``path`` (same folder, same suffix); on success it is renamed to
    ``path`` (atomic on one file system), on failure removed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.partial{path.suffix}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_text(path: str | Path, text: str) -> None:
    """``Path(path).write_text(text)``, atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_json(path: str | Path, obj, indent: int | None = 2, newline: bool = False, **dumps_kwargs) -> None:
    """``obj`` as JSON (``json.dumps(obj, indent=indent, **dumps_kwargs)``, plus a final newline when asked),
    atomically."""
    write_text(path, json.dumps(obj, indent=indent, **dumps_kwargs) + ("\n" if newline else ""))


def save_npz(path: str | Path, compress: bool = False, **arrays) -> None:
    """``np.savez(path, **arrays)`` (``np.savez_compressed`` with ``compress``), atomically (written through a file
    object, so numpy appends no suffix)."""
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        (np.savez_compressed if compress else np.savez)(fh, **arrays)


def save_npy(path: str | Path, array: np.ndarray) -> None:
    """``np.save(path, array)``, atomically (written through a file object, so numpy appends no suffix)."""
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.save(fh, array)
