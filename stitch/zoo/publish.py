"""Ship what the zoo built: rule ``zoo_publish`` copies the demo pack (``results/zoo/pack/``) to
``resources/models/demo/`` and the attribute probe (``results/zoo/probe/``) to ``resources/probes/``.

The copies are the files inference and evaluation read; the rule's own output is a receipt under ``results/zoo/``,
so no rule of the pipeline depends on the training chain. A file whose bytes are already in place is left alone
(its mtime too), so publishing an unchanged file reruns nothing downstream; a changed one is replaced atomically.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

from stitch.atomic import atomic_path
from stitch.packs import sha256_of

log = logging.getLogger(__name__)


def publish_file(src: str | Path, dest_dir: str | Path) -> dict:
    """Copy ``src`` into ``dest_dir`` (same name) unless identical bytes are there; returns its receipt entry."""
    src, dest = Path(src), Path(dest_dir) / Path(src).name
    digest = sha256_of(src)
    unchanged = dest.is_file() and dest.stat().st_size == src.stat().st_size and sha256_of(dest) == digest
    if not unchanged:
        with atomic_path(dest) as tmp:
            shutil.copyfile(src, tmp)
    log.info("%s %s -> %s", "unchanged" if unchanged else "published", src, dest)
    return {"source": str(src), "dest": str(dest), "sha256": digest, "copied": not unchanged}


def run(shipments: dict[str, tuple[list[str], str]], receipt: str | Path) -> dict:
    """Stage ``zoo_publish``: ``shipments`` maps a name (pack, probe) to (source files, destination folder).

    Writes ``receipt`` (JSON: per shipment, each file's source, destination, sha256 and whether it was copied).
    """
    out = {name: [publish_file(src, dest) for src in files] for name, (files, dest) in shipments.items()}
    with atomic_path(receipt) as tmp:
        tmp.write_text(json.dumps(out, indent=2) + "\n")
    return out
