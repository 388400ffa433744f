"""The attribute probe's inference core, shared by the pipeline (rule ``calibrate``, :mod:`stitch.calibrate`) and
the evaluation (:mod:`stitch.probes`, :mod:`stitch.metrics`): loading the probe, dlib descriptors of faces and
frames, applying the probe, the landmark smile score. It imports no evaluation code.

``smile_score`` is a geometric score on dlib's 68 landmarks: how far the mouth corners sit above the centre of
the lips, plus how wide the mouth is, both in units of the inter-ocular distance, so it does not depend on image
size, position or in-plane rotation.

:class:`AttributeProbe` reads age (years, ridge regression) and gender (``p_male``, logistic regression) from
dlib's raw 128-d face descriptor; it is fitted on UTKFace by the ``zoo_probe`` rule (:mod:`stitch.zoo.probe`, the
fitting code; this module only loads, saves and applies it) and shipped as ``resources/probes/attributes.safetensors``
by the ``zoo_publish`` rule. :func:`frame_descriptors` + :func:`attributes` read it (plus the smile score) on whole
frames, the largest detected face of each, so edit strength is measured without the generator that made the edit.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from stitch.atomic import atomic_path
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
#: Frames whose shorter side is below this many pixels are searched with HOG up-sampling 1, else 0.
SMALL_FRAME_PX = 300
_SHAPES = {"mean": (DESCRIPTOR_DIM,), "scale": (DESCRIPTOR_DIM,), "age_coef": (DESCRIPTOR_DIM,), "age_intercept": (1,),
           "gender_coef": (DESCRIPTOR_DIM,), "gender_intercept": (1,)}


def sigmoid(z: np.ndarray) -> np.ndarray:
    """Overflow-free logistic function (NaN stays NaN)."""
    return 0.5 * (1.0 + np.tanh(0.5 * z))


def check_descriptors(x, what: str = "descriptors") -> np.ndarray:
    """(N, 128) float64 of (N, 128) or (128,) descriptors; another shape is a user error."""
    a = np.asarray(x, dtype=np.float64)
    if a.ndim == 1:
        a = a[None]
    if a.ndim != 2 or a.shape[1] != DESCRIPTOR_DIM:
        raise StitchError(f"{what} must have shape (N, {DESCRIPTOR_DIM}), got {np.shape(x)}")
    return a


@dataclass
class AttributeProbe:
    """Generator-independent attribute probe on dlib's raw (unnormalised) 128-d face descriptor.

    * age (years): ridge regression, closed form, penalty ``age_l2`` on the standardised descriptor;
    * gender: logistic regression for ``p_male`` (UTKFace gender 0 = male, 1 = female), penalty ``gender_l2``.

    Both read the descriptor standardised by the training ``mean`` / ``scale``. Stored as safetensors (float64
    arrays: bit-exact round trip) plus a JSON beside it (format, config, metrics, provenance). Fitted by
    :func:`stitch.zoo.probe.fit_probe`.
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

    # -- prediction ----------------------------------------------------------------------------------------

    def predict(self, descriptors: np.ndarray) -> dict[str, np.ndarray]:
        """``{"age": (N,) years, "p_male": (N,) probability}`` of (N, 128) or (128,) descriptors; NaN rows give NaN.

        Ages are not clipped (a linear read-out: edit deltas stay additive); babies can come out slightly below 0.
        """
        z = (check_descriptors(descriptors) - self.mean) / self.scale
        return {"age": z @ self.age_coef + self.age_intercept,
                "p_male": sigmoid(z @ self.gender_coef + self.gender_intercept)}

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
        with atomic_path(wpath) as tmp_w, atomic_path(cpath) as tmp_c:
            save_file(tensors, str(tmp_w), metadata={"stitch_kind": "attribute_probe"})
            tmp_c.write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
        return wpath

    @classmethod
    def load(cls, path: str | Path | None = None) -> "AttributeProbe":
        """Load a probe (default: the shipped ``resources/probes/attributes.safetensors``)."""
        from safetensors import SafetensorError
        from safetensors.numpy import load_file

        wpath = Path(path) if path is not None else DEFAULT_PROBE
        cpath = cls.json_path(wpath)
        how = "refit and ship it with `snakemake --cores 2 zoo_publish` or restore it from git"
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


def _face_id(upsample: int):
    from stitch.dlib_models import dlib_face_id

    return dlib_face_id(upsample)


def _detect(fid, img: np.ndarray, long_side: int):
    """The largest HOG face rectangle of ``img`` found on its copy scaled to ``long_side``
    (:func:`stitch.landmarks.detection_copy`) and scaled back; when the copy shows none (a face too small for it),
    found on the full image. None when neither has a face."""
    import dlib

    from stitch.landmarks import detection_copy, full_size_box

    small, scale = detection_copy(img, long_side)
    rect = fid.detect(small)
    if scale == 1.0:
        return rect
    if rect is None:
        return fid.detect(img)
    return dlib.rectangle(*full_size_box(rect, scale))


def face_descriptor(
    image: np.ndarray, landmarks: np.ndarray | None = None, upsample: int = 0, full_image_fallback: bool = False,
    detect_long_side: int = 0,
) -> tuple[np.ndarray | None, np.ndarray | None, str]:
    """Raw 128-d dlib descriptor of one RGB uint8 image's face.

    With ``landmarks`` (68, 2) they place the face (NaN landmarks = no face). Otherwise the largest HOG face is
    detected (``upsample`` times up-sampled); with ``full_image_fallback`` an image without a detection is
    treated as one already-cropped face (the whole image is the box), as for UTKFace's aligned crops.
    ``detect_long_side`` > 0: detection runs on a copy scaled down to that long side (as the ``landmarks`` setting
    of that name), the 68 landmarks and the descriptor at full resolution.
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
        rect, how = _detect(fid, img, int(detect_long_side)), "detected"
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
    detect_long_side: int = 0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Raw dlib descriptors of the largest face in each frame.

    ``frames``: (T, H, W, 3) uint8 RGB. ``landmarks``: optional (T, 68, 2) used instead of detection (NaN rows =
    no face). Without them the largest HOG face of each frame is found (``upsample``: default
    :func:`auto_upsample`; ``detect_long_side``: as :func:`face_descriptor`). Returns ``descriptors`` (T, 128)
    float64 (NaN rows where no face), ``found`` (T,) bool and ``landmarks`` (T, 68, 2) (NaN where no face).
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
        d, lm, _ = face_descriptor(frames[t], None if landmarks is None else landmarks[t], upsample=up,
                                   detect_long_side=detect_long_side)
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
