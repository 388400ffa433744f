"""Rule zoo_data: align UTKFace for demo-pack training (thin wrapper; logic in stitch.zoo_data)."""

import _repo  # noqa: F401  (puts the repo on sys.path)

import argparse
import logging

from stitch.zoo_data import build_dataset

if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("tar")
    p.add_argument("out")
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--align-scale", type=float, default=0.6)
    p.add_argument("--holdout", type=int, default=300)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--limit", type=int, default=None)
    a = p.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    build_dataset(a.tar, a.out, a.size, a.align_scale, a.holdout, workers=a.workers, limit=a.limit)
