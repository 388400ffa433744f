"""Rule zoo_adversarial: adversarial fine-tuning of the demo pack's generator + encoder (stitch.zoo_adversarial)."""

import _repo  # noqa: F401  (puts the repo on sys.path)

import argparse
import logging

from stitch.zoo_adversarial import AdversarialConfig, train_adversarial

if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("data", help="npz from zoo_data")
    p.add_argument("generator", help="zoo_train's generator.safetensors")
    p.add_argument("encoder", help="zoo_train's encoder.safetensors")
    p.add_argument("work_dir", help="checkpoint + final weights folder (git-ignored)")
    p.add_argument("--steps", type=int, default=AdversarialConfig.steps)
    p.add_argument("--batch", type=int, default=AdversarialConfig.batch)
    p.add_argument("--adv-weight", type=float, default=AdversarialConfig.adv_weight)
    p.add_argument("--threads", type=int, default=AdversarialConfig.threads)
    a = p.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    cfg = AdversarialConfig(steps=a.steps, batch=a.batch, adv_weight=a.adv_weight, threads=a.threads)
    train_adversarial(a.data, a.generator, a.encoder, a.work_dir, cfg)
