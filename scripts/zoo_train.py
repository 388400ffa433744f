"""Rule zoo_train: train the demo pack's generator + encoder (resumable; logic in stitch.zoo_train)."""

import _repo  # noqa: F401  (puts the repo on sys.path)

import argparse
import logging

from stitch.zoo_train import TrainConfig, train

if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("data", help="npz from zoo_data")
    p.add_argument("work_dir", help="checkpoint + final weights folder (git-ignored)")
    p.add_argument("--steps", type=int, default=TrainConfig.steps)
    p.add_argument("--batch", type=int, default=TrainConfig.batch)
    p.add_argument("--threads", type=int, default=TrainConfig.threads)
    p.add_argument("--seed", type=int, default=TrainConfig.seed)
    a = p.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    train(a.data, a.work_dir, TrainConfig(steps=a.steps, batch=a.batch, threads=a.threads, seed=a.seed))
