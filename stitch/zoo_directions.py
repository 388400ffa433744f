"""Edit directions for the demo pack, fitted on the encoded W+ latents of the UTKFace training faces.

Each direction is the normal of a linear boundary between two labelled groups of latents. We use the
class-mean difference (the normal of the nearest-class-mean boundary): a measured experiment here (DESIGN)
found it gives clearly visible edits where logistic/ridge normals barely changed the images at the same step
size; :func:`fit_directions` also reports the cosine to the logistic-regression normal (InterFaceGAN style).

- age: old (>= 50) minus young (18-30) faces, each gender weighted equally, gender component projected out
  (age and gender are entangled: "older" otherwise also means "more male").
- gender: male minus female (positive = more male, as InterFaceGAN), adults 18-60, age groups balanced.
- smile: top minus bottom 30 % of a landmark-measured smile score (dlib 68 points on the 200 px sources),
  adults, genders balanced, age and gender components projected out.

Scale: a direction equals the class-mean difference divided by half the typical STIT factor of that edit
(age 8, gender 6, smile 3), so ``w + factor / 2 * d`` with the typical factor moves a face from one class mean
to the other.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import torch

from stitch.models.e4e import Encoder4Editing
from stitch.invert import invert_crops

log = logging.getLogger(__name__)
TYPICAL_FACTOR = {"age": 8.0, "gender": 6.0, "smile": 3.0}


def group_mean(codes: np.ndarray, mask: np.ndarray, strata: np.ndarray | None = None) -> np.ndarray:
    """Mean code of ``mask``; with ``strata`` the mean of per-stratum means (each stratum weighted equally)."""
    if strata is None:
        return codes[mask].mean(axis=0)
    means = [codes[mask & (strata == s)].mean(axis=0) for s in np.unique(strata[mask])]
    return np.mean(means, axis=0)


def project_out(d: np.ndarray, others: list[np.ndarray]) -> np.ndarray:
    """Remove from ``d`` (num_ws, w_dim) its components along the (orthonormalised) ``others``."""
    flat = d.reshape(-1).astype(np.float64)
    basis: list[np.ndarray] = []
    for o in others:
        v = o.reshape(-1).astype(np.float64)
        for b in basis:
            v = v - (v @ b) * b
        basis.append(v / np.linalg.norm(v))
    for b in basis:
        flat = flat - (flat @ b) * b
    return flat.reshape(d.shape)


def logistic_normal(x: np.ndarray, y: np.ndarray, l2: float = 1e-2, iters: int = 300) -> np.ndarray:
    """Unit normal of an L2-regularised logistic regression (gradient descent on standardised features)."""
    mu, sd = x.mean(0), x.std(0) + 1e-6
    z = (x - mu) / sd
    w, b = np.zeros(z.shape[1]), 0.0
    for _ in range(iters):
        p = 1 / (1 + np.exp(-(z @ w + b)))
        g = z.T @ (p - y) / len(y) + l2 * w
        w -= 0.5 * g
        b -= 0.5 * float(np.mean(p - y))
    n = w / sd
    return n / np.linalg.norm(n)


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.reshape(-1), b.reshape(-1)
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def fit_directions(codes: np.ndarray, age: np.ndarray, gender: np.ndarray, smile: np.ndarray) -> tuple[dict, dict]:
    """Directions name -> (num_ws, w_dim) float32, and fitting statistics."""
    assert codes.ndim == 3 and len(codes) == len(age) == len(gender) == len(smile)
    male = gender == 0
    adult = (age >= 18) & (age <= 60)
    age_group = np.digitize(age, [18, 30, 45])
    young, old = (age >= 18) & (age <= 30), age >= 50
    d_gender = group_mean(codes, adult & male, age_group) - group_mean(codes, adult & ~male, age_group)
    d_age = group_mean(codes, old, gender) - group_mean(codes, young, gender)
    d_age = project_out(d_age, [d_gender])
    lo, hi = np.quantile(smile[adult], [0.3, 0.7])
    d_smile = group_mean(codes, adult & (smile >= hi), gender) - group_mean(codes, adult & (smile <= lo), gender)
    d_smile = project_out(d_smile, [d_gender, d_age])
    raw = {"age": d_age, "gender": d_gender, "smile": d_smile}
    flat = codes.reshape(len(codes), -1)
    stats: dict = {"n": int(len(codes)), "groups": {
        "young": int(young.sum()), "old": int(old.sum()), "male_adult": int((adult & male).sum()),
        "female_adult": int((adult & ~male).sum()), "smile_lo": float(lo), "smile_hi": float(hi)}}
    sel = adult
    lg = logistic_normal(flat[sel], male[sel].astype(float))  # label 1 = male
    stats["cosine_gender_vs_logistic"] = cosine(d_gender, lg)
    stats["cosine_age_gender_raw"] = cosine(group_mean(codes, old, gender) - group_mean(codes, young, gender), d_gender)
    out = {}
    for name, d in raw.items():
        unit = d.reshape(-1) / np.linalg.norm(d)
        spread = float((flat @ unit).std())
        stats[f"{name}_class_distance_in_spreads"] = float(np.linalg.norm(d) / spread)
        out[name] = torch.from_numpy((d / (TYPICAL_FACTOR[name] / 2)).astype(np.float32))
    return out, stats


def run(data_npz, encoder_path, out_directions, out_stats, device="cpu") -> dict:
    """Stage ``zoo_directions``: encode the training faces and fit age / gender / smile directions."""
    from stitch.models.native import load_native
    from stitch.packs import save_directions
    from stitch.probes import smile_score

    data = np.load(data_npz)
    train = ~data["holdout"]
    enc: Encoder4Editing = load_native(encoder_path, device=device, kind="encoder")
    codes = invert_crops(enc, data["crops"][train], batch=64, device=device)
    smile = np.array([smile_score(lm) for lm in data["landmarks"][train]])
    dirs, stats = fit_directions(codes, data["age"][train], data["gender"][train], smile)
    save_directions(out_directions, dirs)
    Path(out_stats).write_text(json.dumps(stats, indent=2))
    log.info("directions fitted: %s", stats)
    return stats
