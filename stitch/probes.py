"""Attribute probes independent of the generator.

``smile_score`` is a geometric score on dlib's 68 landmarks: how far the mouth corners sit above the centre of
the lips, plus how wide the mouth is, both in units of the inter-ocular distance, so it does not depend on image
size, position or in-plane rotation.

:class:`AttributeProbe` reads age (years, ridge regression) and gender (``p_male``, logistic regression) from
dlib's raw 128-d face descriptor; it is fitted on UTKFace by the ``zoo_probe`` rule (:mod:`stitch.zoo_probe`) and
shipped as ``resources/probes/attributes.safetensors``. :func:`probe_frames` applies it (plus the smile score)
to every frame of a video, so edit strength is measured without the generator that made the edit.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from stitch.errors import StitchError

# dlib 68-point indices (iBUG layout)
_LEFT_EYE = slice(36, 42)
_RIGHT_EYE = slice(42, 48)
_MOUTH_LEFT, _MOUTH_RIGHT = 48, 54
_UPPER_LIP_MID, _LOWER_LIP_MID = 62, 66  # inner lip centre points


def smile_score(landmarks: np.ndarray) -> float:
    """Landmark smile score of one face (larger = bigger smile).

    ``landmarks``: (68, 2) x, y pixel coordinates. The frame is rotated so the eyes are level; the score is
    ``(corner lift + 0.5 * (mouth width - 0.8))`` where corner lift is how far the mean of the two mouth corners sits
    above the mean of the inner-lip centre points and both lengths are divided by the inter-ocular distance.
    """
    lm = np.asarray(landmarks, dtype=np.float64)
    assert lm.shape == (68, 2), f"smile_score wants (68, 2) landmarks, got {lm.shape}"
    eye_l, eye_r = lm[_LEFT_EYE].mean(0), lm[_RIGHT_EYE].mean(0)
    axis = eye_r - eye_l
    iod = float(np.hypot(*axis))
    if iod < 1e-6:
        raise ValueError("smile_score: eyes coincide, landmarks are degenerate")
    ex = axis / iod
    ey = np.array([-ex[1], ex[0]])  # points down in image coordinates (y grows downwards)
    centre = (eye_l + eye_r) / 2
    local = (lm - centre) @ np.stack([ex, ey], axis=1) / iod
    corners_y = (local[_MOUTH_LEFT, 1] + local[_MOUTH_RIGHT, 1]) / 2
    lips_y = (local[_UPPER_LIP_MID, 1] + local[_LOWER_LIP_MID, 1]) / 2
    lift = lips_y - corners_y
    width = local[_MOUTH_RIGHT, 0] - local[_MOUTH_LEFT, 0]
    return float(lift + 0.5 * (width - 0.8))


# ---------------------------------------------------------------------------------------------------------
# Attribute probe: age (years) and gender (p_male) from dlib's raw 128-d face descriptor

#: Shipped probe weights (``.json`` with config, metrics and provenance beside it), found from the package folder.
DEFAULT_PROBE = Path(__file__).resolve().parents[1] / "resources" / "probes" / "attributes.safetensors"
DESCRIPTOR_DIM = 128
PROBE_FORMAT_VERSION = 1
#: Ridge penalty on the standardised descriptor (age, in years) and L2 penalty of the gender logistic regression.
AGE_L2 = 10.0
GENDER_L2 = 1.0
GENDER_ITERS = 200
#: Frames whose shorter side is below this many pixels are searched with HOG up-sampling 1, else 0.
SMALL_FRAME_PX = 300
_SHAPES = {"mean": (DESCRIPTOR_DIM,), "scale": (DESCRIPTOR_DIM,), "age_coef": (DESCRIPTOR_DIM,), "age_intercept": (1,),
           "gender_coef": (DESCRIPTOR_DIM,), "gender_intercept": (1,)}


def _sigmoid(z: np.ndarray) -> np.ndarray:
    """Overflow-free logistic function (NaN stays NaN)."""
    return 0.5 * (1.0 + np.tanh(0.5 * z))


def _descriptors(x, what: str = "descriptors") -> np.ndarray:
    a = np.asarray(x, dtype=np.float64)
    if a.ndim == 1:
        a = a[None]
    if a.ndim != 2 or a.shape[1] != DESCRIPTOR_DIM:
        raise StitchError(f"{what} must have shape (N, {DESCRIPTOR_DIM}), got {np.shape(x)}")
    return a


def fit_ridge(z: np.ndarray, y: np.ndarray, l2: float) -> tuple[np.ndarray, float]:
    """Closed-form ridge regression ``y ~ z @ coef + intercept`` (intercept not penalised)."""
    y_mean = float(y.mean())
    zc = z - z.mean(axis=0)
    coef = np.linalg.solve(zc.T @ zc + l2 * np.eye(z.shape[1]), zc.T @ (y - y_mean))
    return coef, y_mean - float(z.mean(axis=0) @ coef)


def fit_logistic(z: np.ndarray, y: np.ndarray, l2: float, iters: int = GENDER_ITERS, tol: float = 1e-10):
    """L2-regularised logistic regression by damped Newton steps (at most ``iters``; intercept not penalised).

    Minimises ``mean(log-loss) + l2 / (2 N) * |coef|^2``. Returns ``(coef, intercept, steps taken)``.
    """
    n, d = z.shape
    x = np.hstack([z, np.ones((n, 1))])
    theta = np.zeros(d + 1)
    pen = np.full(d + 1, l2 / n)
    pen[-1] = 0.0

    def loss(t: np.ndarray) -> float:
        s = x @ t
        return float(np.mean(np.logaddexp(0.0, s) - y * s) + 0.5 * (pen * t * t).sum())

    cur, step = loss(theta), 0
    for step in range(1, iters + 1):
        p = _sigmoid(x @ theta)
        grad = x.T @ (p - y) / n + pen * theta
        hess = (x * (p * (1 - p))[:, None]).T @ x / n + np.diag(pen) + 1e-12 * np.eye(d + 1)
        delta = np.linalg.solve(hess, grad)
        t = 1.0
        while t > 1e-6 and loss(theta - t * delta) > cur:  # backtracking keeps every step a descent step
            t *= 0.5
        theta = theta - t * delta
        new = loss(theta)
        if cur - new < tol:
            cur = new
            break
        cur = new
    return theta[:-1], float(theta[-1]), step


@dataclass
class AttributeProbe:
    """Generator-independent attribute probe on dlib's raw (unnormalised) 128-d face descriptor.

    * age (years): ridge regression, closed form, penalty ``age_l2`` on the standardised descriptor;
    * gender: logistic regression for ``p_male`` (UTKFace gender 0 = male, 1 = female), penalty ``gender_l2``.

    Both read the descriptor standardised by the training ``mean`` / ``scale``. Stored as safetensors (float64
    arrays: bit-exact round trip) plus a JSON beside it (format, config, metrics, provenance).
    """

    mean: np.ndarray
    scale: np.ndarray
    age_coef: np.ndarray
    age_intercept: float
    gender_coef: np.ndarray
    gender_intercept: float
    config: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    provenance: dict[str, Any] = field(default_factory=dict)

    # -- fitting and prediction -----------------------------------------------------------------------------

    @classmethod
    def fit(
        cls, descriptors: np.ndarray, ages: np.ndarray, genders: np.ndarray, age_l2: float = AGE_L2,
        gender_l2: float = GENDER_L2, gender_iters: int = GENDER_ITERS,
    ) -> "AttributeProbe":
        """Fit on (N, 128) descriptors, (N,) ages in years and (N,) UTKFace genders (0 = male, 1 = female)."""
        x = _descriptors(descriptors)
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
        age_coef, age_icpt = fit_ridge(z, ages, age_l2)
        g_coef, g_icpt, steps = fit_logistic(z, (genders == 0).astype(np.float64), gender_l2, gender_iters)
        config = {"age_l2": float(age_l2), "gender_l2": float(gender_l2), "gender_iters": int(gender_iters),
                  "gender_newton_steps": int(steps), "n_train": int(len(x))}
        return cls(mean, scale, age_coef, age_icpt, g_coef, g_icpt, config=config)

    def predict(self, descriptors: np.ndarray) -> dict[str, np.ndarray]:
        """``{"age": (N,) years, "p_male": (N,) probability}`` of (N, 128) or (128,) descriptors; NaN rows give NaN.

        Ages are not clipped (a linear read-out: edit deltas stay additive); babies can come out slightly below 0.
        """
        z = (_descriptors(descriptors) - self.mean) / self.scale
        return {"age": z @ self.age_coef + self.age_intercept,
                "p_male": _sigmoid(z @ self.gender_coef + self.gender_intercept)}

    # -- storage --------------------------------------------------------------------------------------------

    @staticmethod
    def json_path(path: str | Path) -> Path:
        return Path(path).with_suffix(".json")

    def save(self, path: str | Path) -> Path:
        """Write ``path`` (.safetensors) and its ``.json`` beside it, atomically; returns the weights path."""
        from safetensors.numpy import save_file

        wpath = Path(path)
        if wpath.suffix != ".safetensors":
            raise StitchError(f"{wpath}: attribute probe weights must end in .safetensors")
        cpath = self.json_path(wpath)
        wpath.parent.mkdir(parents=True, exist_ok=True)
        tensors = {
            "mean": self.mean, "scale": self.scale, "age_coef": self.age_coef,
            "age_intercept": np.array([self.age_intercept]), "gender_coef": self.gender_coef,
            "gender_intercept": np.array([self.gender_intercept]),
        }
        tensors = {k: np.ascontiguousarray(v, dtype=np.float64) for k, v in tensors.items()}
        meta = {"format": "stitch", "kind": "attribute_probe", "version": PROBE_FORMAT_VERSION,
                "descriptor": "dlib_face_recognition_resnet_model_v1, raw 128-d (not normalised)",
                "outputs": {"age": "years (ridge)", "p_male": "P(male) (logistic; UTKFace gender 0 = male)"},
                "config": self.config, "metrics": self.metrics, "provenance": self.provenance}
        tmp_w, tmp_c = wpath.with_name(wpath.name + ".tmp"), cpath.with_name(cpath.name + ".tmp")
        save_file(tensors, str(tmp_w), metadata={"stitch_kind": "attribute_probe"})
        tmp_c.write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
        os.replace(tmp_w, wpath)
        os.replace(tmp_c, cpath)
        return wpath

    @classmethod
    def load(cls, path: str | Path | None = None) -> "AttributeProbe":
        """Load a probe (default: the shipped ``resources/probes/attributes.safetensors``)."""
        from safetensors import SafetensorError
        from safetensors.numpy import load_file

        wpath = Path(path) if path is not None else DEFAULT_PROBE
        cpath = cls.json_path(wpath)
        how = "refit with `snakemake --cores 1 zoo_probe` or restore it from git"
        for p in (wpath, cpath):
            if not p.is_file():
                raise StitchError(f"{p}: attribute probe file not found ({how})")
        try:
            meta = json.loads(cpath.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise StitchError(f"{cpath}: attribute probe config is not valid JSON ({e})") from None
        if not isinstance(meta, dict) or meta.get("kind") != "attribute_probe":
            raise StitchError(f"{cpath}: not an attribute probe config (expected kind 'attribute_probe')")
        try:
            t = load_file(str(wpath))
        except (SafetensorError, OSError, ValueError) as e:
            raise StitchError(f"{wpath}: corrupt attribute probe weights ({e})") from None
        want = _SHAPES
        bad = [k for k, s in want.items() if k not in t or t[k].shape != s or not np.isfinite(t[k]).all()]
        if bad or set(t) != set(want):
            raise StitchError(f"{wpath}: corrupt attribute probe weights (bad or missing tensors: "
                              f"{bad or sorted(set(t) ^ set(want))})")
        t = {k: v.astype(np.float64) for k, v in t.items()}
        return cls(t["mean"], t["scale"], t["age_coef"], float(t["age_intercept"][0]), t["gender_coef"],
                   float(t["gender_intercept"][0]), config=meta.get("config") or {},
                   metrics=meta.get("metrics") or {}, provenance=meta.get("provenance") or {})


# ---------------------------------------------------------------------------------------------------------
# Descriptors and per-frame probing


@lru_cache(maxsize=4)
def _face_id(upsample: int):
    from stitch.models.face_id import DlibFaceID

    return DlibFaceID(upsample=upsample)


def face_descriptor(
    image: np.ndarray, landmarks: np.ndarray | None = None, upsample: int = 0, full_image_fallback: bool = False,
) -> tuple[np.ndarray | None, np.ndarray | None, str]:
    """Raw 128-d dlib descriptor of one RGB uint8 image's face.

    With ``landmarks`` (68, 2) they place the face (NaN landmarks = no face). Otherwise the largest HOG face is
    detected (``upsample`` times up-sampled); with ``full_image_fallback`` an image without a detection is
    treated as one already-cropped face (the whole image is the box), as for UTKFace's aligned crops.
    Returns ``(descriptor or None, landmarks or None, how)`` with ``how`` in given / detected / full_image / none.
    """
    import dlib

    fid = _face_id(int(upsample))
    img = np.ascontiguousarray(image)
    if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8:
        raise StitchError(f"face descriptor needs an RGB uint8 image (H, W, 3), got {img.dtype} {img.shape}")
    if landmarks is not None:
        lm = np.asarray(landmarks, np.float64)
        if lm.shape != (68, 2):
            raise StitchError(f"landmarks must have shape (68, 2), got {lm.shape}")
        if not np.isfinite(lm).all():
            return None, None, "none"
        shape, how = fid._shape(img, lm), "given"
    else:
        rect, how = fid.detect(img), "detected"
        if rect is None:
            if not full_image_fallback:
                return None, None, "none"
            rect, how = dlib.rectangle(0, 0, img.shape[1] - 1, img.shape[0] - 1), "full_image"
        shape = fid.predictor(img, rect)
        lm = np.array([(p.x, p.y) for p in shape.parts()], np.float64)
    d = fid.recognizer.compute_face_descriptor(img, shape, fid.num_jitters, fid.padding)
    return np.array(d, np.float64), lm, how


def _frames_array(frames) -> Sequence[np.ndarray]:
    if isinstance(frames, np.ndarray):
        if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
            raise StitchError(f"frames must be a (T, H, W, 3) uint8 RGB array, got {frames.dtype} {frames.shape}")
    return frames


def auto_upsample(frames) -> int:
    """HOG up-sampling for these frames: 1 when the shorter side is below ``SMALL_FRAME_PX``, else 0."""
    if len(frames) == 0:
        return 0
    return 1 if min(np.shape(frames[0])[:2]) < SMALL_FRAME_PX else 0


def frame_descriptors(
    frames: np.ndarray, landmarks: np.ndarray | None = None, progress: bool = False, upsample: int | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Raw dlib descriptors of the largest face in each frame.

    ``frames``: (T, H, W, 3) uint8 RGB. ``landmarks``: optional (T, 68, 2) used instead of detection (NaN rows =
    no face). Without them the largest HOG face of each frame is found (``upsample``: default
    :func:`auto_upsample`). Returns ``descriptors`` (T, 128) float64 (NaN rows where no face), ``found`` (T,)
    bool and ``landmarks`` (T, 68, 2) (NaN where no face).
    """
    from stitch.progress import tqdm

    frames = _frames_array(frames)
    n = len(frames)
    if landmarks is not None:
        landmarks = np.asarray(landmarks, np.float64)
        if landmarks.shape != (n, 68, 2):
            raise StitchError(f"landmarks must have shape ({n}, 68, 2) for {n} frames, got {landmarks.shape}")
    up = auto_upsample(frames) if upsample is None else int(upsample)
    desc = np.full((n, DESCRIPTOR_DIM), np.nan)
    lms = np.full((n, 68, 2), np.nan)
    found = np.zeros(n, dtype=bool)
    for t in tqdm(range(n), desc="attribute probe", unit="frame", disable=not progress, leave=False):
        d, lm, _ = face_descriptor(frames[t], None if landmarks is None else landmarks[t], upsample=up)
        if d is not None:
            desc[t], lms[t], found[t] = d, lm, True
    return desc, found, lms


def smile_or_nan(lm: np.ndarray) -> float:
    """:func:`smile_score`, NaN for missing (NaN) or degenerate landmarks."""
    if not np.isfinite(lm).all():
        return float("nan")
    try:
        return smile_score(lm)
    except ValueError:
        return float("nan")


def attributes(probe: AttributeProbe, desc: np.ndarray, found: np.ndarray, lms: np.ndarray) -> dict[str, np.ndarray]:
    """``age``, ``p_male`` and ``smile`` per frame from :func:`frame_descriptors`' outputs (NaN where no face)."""
    found = np.asarray(found, bool)
    pred = probe.predict(desc)
    return {
        "age": np.where(found, np.asarray(pred["age"], np.float64), np.nan),
        "p_male": np.where(found, np.asarray(pred["p_male"], np.float64), np.nan),
        "smile": np.array([smile_or_nan(lm) if f else np.nan for lm, f in zip(lms, found)], np.float64),
    }


def probe_frames(
    frames: np.ndarray, probe: AttributeProbe | None = None, landmarks: np.ndarray | None = None,
    progress: bool = True,
):
    """Per-frame attributes of the largest face: a DataFrame with one row per frame and columns
    ``frame, found, age, p_male, smile`` (NaN values where no face was found).

    ``probe`` defaults to the shipped :meth:`AttributeProbe.load`; ``landmarks`` (T, 68, 2) as in
    :func:`frame_descriptors`; ``smile`` is :func:`smile_score` of the frame's landmarks.
    """
    import pandas as pd

    probe = AttributeProbe.load() if probe is None else probe
    desc, found, lms = frame_descriptors(frames, landmarks, progress=progress)
    return pd.DataFrame({"frame": np.arange(len(found)), "found": found, **attributes(probe, desc, found, lms)})
