"""Fit the attribute probe (:class:`stitch.probes.AttributeProbe`) on UTKFace: rule ``zoo_probe``.

A deterministic random subset of ``n_faces`` UTKFace crops (all ages, children included; :func:`split_faces`)
gets dlib's raw 128-d descriptor (HOG detection with up-sampling 1 on the 200x200 crop; a crop without a
detection is already aligned, so its full rectangle is the face box). 80 % of the subset fits the probe
(:func:`fit_probe`), the other 20 % measures it: age MAE (years) and correlation, gender accuracy. Weights and a
JSON with config, held-out metrics and provenance go to ``results/zoo/probe/``; rule ``zoo_publish`` ships them as
``resources/probes/attributes.*``::

    snakemake --cores 2 zoo_publish

Descriptors are cached per file name in ``cache`` (an ``.npz`` under the zoo work dir, not a rule output so
Snakemake keeps it), so refits with other constants or more faces only describe the new faces.
"""

from __future__ import annotations

import io
import logging
import tarfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from stitch.atomic import save_npz
from stitch.errors import StitchError
from stitch.probes import AttributeProbe, check_descriptors, face_descriptor
from stitch.zoo.data import parse_name
from stitch.zoo.linear import fit_logistic, fit_ridge

log = logging.getLogger(__name__)

UPSAMPLE = 1
TEST_FRACTION = 0.2
RULE_COMMAND = "snakemake --cores 2 zoo_probe"


@dataclass
class ProbeConfig:
    """Rule ``zoo_probe`` (config ``zoo.probe``): how many UTKFace faces (80 % fit, 20 % held out) and the seed that
    picks them; ridge penalty of the age read-out (on the standardised descriptor, years) and L2 penalty and Newton
    step limit of the gender logistic regression."""

    n_faces: int = 3000
    seed: int = 0
    age_l2: float = 10.0
    gender_l2: float = 1.0
    gender_iters: int = 200


def fit_probe(descriptors: np.ndarray, ages: np.ndarray, genders: np.ndarray,
              cfg: ProbeConfig | None = None) -> AttributeProbe:
    """Fit on (N, 128) descriptors, (N,) ages in years and (N,) UTKFace genders (0 = male, 1 = female)."""
    cfg = cfg or ProbeConfig()
    x = check_descriptors(descriptors)
    ages = np.asarray(ages, np.float64).reshape(-1)
    genders = np.asarray(genders).reshape(-1)
    if not (len(x) == len(ages) == len(genders)):
        raise StitchError(f"fit: {len(x)} descriptors, {len(ages)} ages and {len(genders)} genders differ in count")
    if not np.isfinite(x).all() or not np.isfinite(ages).all():
        raise StitchError("fit: descriptors and ages must be finite (drop faces without a descriptor first)")
    if not np.isin(genders, (0, 1)).all() or len(np.unique(genders)) < 2:
        raise StitchError("fit: genders must be 0 (male) / 1 (female) with both present")
    mean, scale = x.mean(axis=0), x.std(axis=0) + 1e-8
    z = (x - mean) / scale
    age_coef, age_icpt = fit_ridge(z, ages, cfg.age_l2)
    g_coef, g_icpt, steps = fit_logistic(z, (genders == 0).astype(np.float64), cfg.gender_l2, cfg.gender_iters)
    config = {"age_l2": float(cfg.age_l2), "gender_l2": float(cfg.gender_l2), "gender_iters": int(cfg.gender_iters),
              "gender_newton_steps": int(steps), "n_train": int(len(x))}
    return AttributeProbe(mean, scale, age_coef, age_icpt, g_coef, g_icpt, config=config)


def utkface_index(tar_path: str | Path) -> list[tuple[str, int, int]]:
    """Sorted ``(member name, age, gender)`` of every parsable UTKFace image in the tar.

    Names whose gender field is not 0/1 are skipped (one UTKFace file, ``61_3_<date>``, lacks a field, so its
    second number is ambiguous). ``stitch.zoo.data`` keeps it, so the demo pack's held-out split stays reproducible.
    """
    tar_path = Path(tar_path)
    if not tar_path.is_file():
        raise StitchError(f"{tar_path}: UTKFace tar not found (set zoo.utkface_tar in config/config.yaml)")
    with tarfile.open(tar_path) as tf:
        out = []
        for m in tf.getmembers():
            lab = parse_name(m.name) if m.isfile() else None
            if lab is not None and lab[1] in (0, 1):
                out.append((m.name, lab[0], lab[1]))
    if not out:
        raise StitchError(f"{tar_path}: no UTKFace images (age_gender_race_date.jpg.chip.jpg) in the tar")
    return sorted(out)


def split_faces(n_total: int, n_faces: int, seed: int, test_fraction: float = TEST_FRACTION):
    """Deterministic subset of ``n_faces`` of ``n_total`` sorted images and its split: ``(train, test)`` indices.

    The same (n_total, n_faces, seed) always gives the same split, so the held-out faces can be rebuilt from the
    probe's JSON (``provenance``) by tests.
    """
    if n_faces < 10:
        raise StitchError(f"config zoo.probe.n_faces must be at least 10, got {n_faces}")
    perm = np.random.default_rng(seed).permutation(n_total)[: min(n_faces, n_total)]
    n_test = int(round(len(perm) * test_fraction))
    return perm[: len(perm) - n_test], perm[len(perm) - n_test:]


def read_images(tar_path: str | Path, names: list[str]) -> dict[str, np.ndarray]:
    """RGB uint8 arrays of the named tar members."""
    want = set(names)
    out = {}
    with tarfile.open(tar_path) as tf:
        for m in tf.getmembers():
            if m.name in want:
                out[m.name] = np.array(Image.open(io.BytesIO(tf.extractfile(m).read())).convert("RGB"))
    missing = want - set(out)
    if missing:
        raise StitchError(f"{tar_path}: {len(missing)} images missing, e.g. {sorted(missing)[0]}")
    return out


def describe_crops(images: dict[str, np.ndarray], progress: bool = True) -> dict[str, tuple[np.ndarray, str]]:
    """Descriptor and how the face was placed (detected / full_image) of each UTKFace crop."""
    out = {}
    for name in tqdm(sorted(images), desc="dlib descriptors", unit="face", disable=not progress, mininterval=10):
        d, _, how = face_descriptor(images[name], upsample=UPSAMPLE, full_image_fallback=True)
        out[name] = (d, how)
    return out


def _load_cache(cache: Path | None) -> dict[str, tuple[np.ndarray, str]]:
    if cache is None or not cache.is_file():
        return {}
    try:
        z = np.load(cache, allow_pickle=False)
        if int(z["upsample"]) != UPSAMPLE:
            return {}
        return {str(n): (d, str(h)) for n, d, h in zip(z["names"], z["descriptors"], z["how"])}
    except (OSError, KeyError, ValueError) as e:
        log.warning("ignoring unreadable descriptor cache %s (%s)", cache, e)
        return {}


def _save_cache(cache: Path, entries: dict[str, tuple[np.ndarray, str]]) -> None:
    names = sorted(entries)
    save_npz(cache, names=np.asarray(names), descriptors=np.stack([entries[n][0] for n in names]),
             how=np.asarray([entries[n][1] for n in names]), upsample=UPSAMPLE)


def descriptors_for(tar_path, names: list[str], cache: str | Path | None = None, progress: bool = True):
    """(N, 128) descriptors and (N,) placement of the named UTKFace crops, reusing and extending ``cache``."""
    cache = Path(cache) if cache is not None else None
    entries = _load_cache(cache)
    todo = [n for n in names if n not in entries]
    log.info("descriptors: %d cached, %d to compute", len(names) - len(todo), len(todo))
    if todo:
        entries.update(describe_crops(read_images(tar_path, todo), progress=progress))
        if cache is not None:
            _save_cache(cache, entries)
    return np.stack([entries[n][0] for n in names]), np.asarray([entries[n][1] for n in names])


def evaluate(probe: AttributeProbe, descriptors: np.ndarray, ages: np.ndarray, genders: np.ndarray) -> dict:
    """Age MAE (years) and Pearson r, gender accuracy (p_male > 0.5 vs UTKFace gender 0) on labelled faces."""
    pred = probe.predict(descriptors)
    ages = np.asarray(ages, np.float64)
    male = np.asarray(genders) == 0
    adult = ages >= 18
    return {
        "n": int(len(ages)),
        "age_mae": float(np.abs(pred["age"] - ages).mean()),
        "age_mae_adults": float(np.abs(pred["age"] - ages)[adult].mean()) if adult.any() else float("nan"),
        "age_r": float(np.corrcoef(pred["age"], ages)[0, 1]),
        "gender_accuracy": float(((pred["p_male"] > 0.5) == male).mean()),
        "gender_accuracy_adults": float(((pred["p_male"] > 0.5) == male)[adult].mean()) if adult.any()
        else float("nan"),
    }


def run(tar_path: str | Path, out_path: str | Path, cfg: ProbeConfig | None = None, cache: str | Path | None = None,
        progress: bool = True) -> dict:
    """Stage ``zoo_probe``: fit the probe on ``cfg.n_faces`` UTKFace crops, write ``out_path`` (+ ``.json``); returns
    the held-out and training metrics."""
    import dlib

    from stitch.packs.demo import git_commit

    cfg = cfg or ProbeConfig()
    t0 = time.time()
    index = utkface_index(tar_path)
    train, test = split_faces(len(index), cfg.n_faces, cfg.seed)
    chosen = np.concatenate([train, test])
    names = [index[i][0] for i in chosen]
    ages = np.array([index[i][1] for i in chosen], np.float64)
    genders = np.array([index[i][2] for i in chosen], np.int64)
    desc, how = descriptors_for(tar_path, names, cache, progress=progress)
    ntr = len(train)
    probe = fit_probe(desc[:ntr], ages[:ntr], genders[:ntr], cfg)
    probe.metrics = {"heldout": evaluate(probe, desc[ntr:], ages[ntr:], genders[ntr:]),
                     "train": evaluate(probe, desc[:ntr], ages[:ntr], genders[:ntr])}
    probe.provenance = {
        "data": f"UTKFace 200x200 crops ({Path(tar_path).name}, {len(index)} images)",
        "n_total": len(index), "n_faces": int(len(chosen)), "n_train": int(ntr), "n_test": int(len(test)),
        "seed": int(cfg.seed),
        "split": "stitch.zoo.probe.split_faces(n_total, n_faces, seed): first 80 % train, last 20 % held out",
        "placement": {k: int(v) for k, v in zip(*np.unique(how, return_counts=True))},
        "hog_upsample": UPSAMPLE, "dlib": dlib.__version__,
        "command": RULE_COMMAND, "settings": asdict(cfg), "commit": git_commit(),
    }
    probe.save(out_path)
    h = probe.metrics["heldout"]
    log.info("held out (n=%d): age MAE %.2f years (r %.3f), gender accuracy %.3f; %.0f s; wrote %s", h["n"],
             h["age_mae"], h["age_r"], h["gender_accuracy"], time.time() - t0, out_path)
    return probe.metrics
