"""Convert an official checkpoint into Stitch's safetensors + JSON format.

    python scripts/convert_checkpoint.py SRC DST

SRC: NVIDIA StyleGAN2-ADA network pickle (e.g. STIT's ffhq.pkl), rosinality stylegan2-pytorch ``.pt``,
e4e ``.pt`` (encoder + decoder) or a Stitch model. DST: a folder; receives ``generator.safetensors/.json``
and, for e4e, ``encoder.safetensors/.json``. The source is read without executing any code from it, every
source tensor must be used, and the written model is checked to reproduce the loaded one.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from stitch.errors import StitchError  # noqa: E402
from stitch.models.convert import convert_checkpoint  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("src", help="checkpoint to convert (.pkl / .pt / .safetensors / Stitch folder)")
    ap.add_argument("dst", help="output folder")
    a = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        convert_checkpoint(a.src, a.dst)
    except StitchError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
