"""Training data for the demo pack: UTKFace crops aligned exactly like the pipeline aligns video frames.

Each 200x200 UTKFace image goes through the pipeline's own detector/landmarks (``stitch.landmarks``), FFHQ
quad (``stitch.align``) and crop (``stitch.crop``). Output: one ``.npz`` with the aligned crops, the 68
landmarks on the source image (for the landmark smile score), labels and a fixed held-out split.
"""

from __future__ import annotations

import io
import logging
import re
import tarfile
from dataclasses import dataclass
from multiprocessing import Pool
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from stitch.align import ffhq_quad
from stitch.atomic import save_npz
from stitch.crop import crop_face
from stitch.errors import StitchError
from stitch.landmarks import FaceLandmarker

log = logging.getLogger(__name__)


@dataclass
class DataConfig:
    """Rule ``zoo_data`` (config ``zoo.data``): crop size (px), FFHQ quad scale (the pack's ``align_scale``, as the
    pipeline aligns frames with it), held-out faces and the seed that picks them."""

    size: int = 64
    align_scale: float = 0.6
    holdout: int = 300
    seed: int = 0


NAME_RE = re.compile(r"(?:.*/)?(\d+)_(\d)_(?:(\d)_)?\d+.*\.jpg.*$")


def parse_name(name: str) -> tuple[int, int, int] | None:
    """UTKFace ``age_gender_race_date.jpg.chip.jpg`` -> (age, gender, race or -1); None if unparsable."""
    m = NAME_RE.match(name)
    if not m:
        return None
    return int(m.group(1)), int(m.group(2)), int(m.group(3)) if m.group(3) is not None else -1


_WORKER: dict = {}


def _init_worker(size: int, scale: float) -> None:
    _WORKER.update(landmarker=FaceLandmarker(upsample=0), size=size, scale=scale)


def _process(item: tuple[str, bytes]):
    name, data = item
    img = np.ascontiguousarray(np.array(Image.open(io.BytesIO(data)).convert("RGB")))
    fl: FaceLandmarker = _WORKER["landmarker"]
    dets = fl.detect(img) or fl.detect(img, upsample=1)
    if not dets:
        return name, None, None
    lm = dets[0].landmarks
    crop = crop_face(img, ffhq_quad(lm, _WORKER["scale"]), _WORKER["size"])
    return name, crop, lm.astype(np.float32)


def build_dataset(
    tar_path: str | Path, out_path: str | Path, cfg: DataConfig | None = None, workers: int = 2,
    limit: int | None = None,
) -> dict:
    """Align every UTKFace image and write ``out_path`` (.npz). Returns summary counts.

    ``cfg`` defaults to :class:`DataConfig`; ``limit``: only the first ``limit`` images (by name), for quick checks.
    """
    cfg = cfg or DataConfig()
    tar_path = Path(tar_path)
    if not tar_path.is_file():
        raise StitchError(f"{tar_path}: UTKFace tar not found (set zoo.utkface_tar in config/config.yaml)")
    items = []
    with tarfile.open(tar_path) as tf:
        for m in tf.getmembers():
            if m.isfile() and parse_name(m.name) is not None:
                items.append((m.name, tf.extractfile(m).read()))
    items.sort(key=lambda it: it[0])
    if limit:
        items = items[:limit]
    crops, lms, labels, names = [], [], [], []
    with Pool(workers, initializer=_init_worker, initargs=(cfg.size, cfg.align_scale)) as pool:
        for name, crop, lm in tqdm(pool.imap(_process, items, chunksize=16), total=len(items), desc="align UTKFace"):
            if crop is None:
                continue
            crops.append(crop)
            lms.append(lm)
            labels.append(parse_name(name))
            names.append(Path(name).name)
    n = len(crops)
    rng = np.random.default_rng(cfg.seed)
    is_holdout = np.zeros(n, dtype=bool)
    is_holdout[rng.choice(n, size=min(cfg.holdout, n // 5), replace=False)] = True
    lab = np.asarray(labels, dtype=np.int32)
    save_npz(
        out_path, crops=np.stack(crops), landmarks=np.stack(lms), age=lab[:, 0], gender=lab[:, 1], race=lab[:, 2],
        names=np.asarray(names), holdout=is_holdout, size=cfg.size, align_scale=cfg.align_scale,
    )
    summary = {"images": len(items), "aligned": n, "no_face": len(items) - n, "holdout": int(is_holdout.sum())}
    log.info("UTKFace aligned: %s", summary)
    return summary
