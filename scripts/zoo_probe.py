"""Rule zoo_probe: fit the age/gender attribute probe on UTKFace (thin wrapper; logic in stitch.zoo_probe)."""

import _repo  # noqa: F401  (puts the repo on sys.path)

import argparse
import logging
import shlex
import sys

from stitch.errors import StitchError
from stitch.zoo_probe import run

if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("tar")
    p.add_argument("out", help="weights (.safetensors); the .json goes beside it")
    p.add_argument("--n-faces", type=int, default=3000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--cache", default=None, help="descriptor cache (.npz), reused and extended")
    a = p.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        run(a.tar, a.out, a.n_faces, a.seed, cache=a.cache, command=shlex.join(["python", *sys.argv]))
    except StitchError as e:
        print(f"stitch error: {e}", file=sys.stderr)
        sys.exit(1)
