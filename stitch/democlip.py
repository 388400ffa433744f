"""The README demo's input clip, made at run time from a real photo that a dependency ships.

matplotlib bundles ``sample_data/grace_hopper.jpg`` (512 x 600). The clip is a slow virtual camera move over
that photo (pan, zoom and a little roll along smooth curves) with non-rigid motion: the jaw and lower lip open and
close in syllables, and a generated voice-like audio track follows the same syllable envelope, so the demo
exercises tracking, smoothing, stitching and audio muxing. Deterministic for a given seed.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from stitch.errors import StitchError
from stitch.video import write_video, write_wav

log = logging.getLogger(__name__)

AUDIO_RATE = 44_100


def photo() -> np.ndarray:
    """matplotlib's Grace Hopper photo as uint8 RGB (600, 512, 3)."""
    import matplotlib.cbook as cbook

    path = cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)
    return np.asarray(Image.open(path).convert("RGB"))


def syllables(n: int, fps: float, seed: int) -> np.ndarray:
    """Mouth opening in [0, 1] per frame: ~4 syllables/s with random strengths and short pauses."""
    rng = np.random.default_rng(seed)
    t = np.arange(n) / fps
    env = np.zeros(n)
    start = 0.25
    while start < t[-1]:
        dur = rng.uniform(0.14, 0.26)
        amp = rng.uniform(0.4, 1.0)
        env += amp * np.clip(np.sin(np.pi * (t - start) / dur), 0, None) * ((t >= start) & (t <= start + dur))
        start += dur + rng.choice([0.03, 0.05, 0.3], p=[0.45, 0.4, 0.15])
    return np.clip(env, 0, 1)


def voice(envelope: np.ndarray, fps: float, seconds: float, seed: int) -> np.ndarray:
    """A vowel-like mono signal (harmonics of a gliding 170 Hz pitch) gated by the syllable envelope; int16."""
    rng = np.random.default_rng(seed + 1)
    n = int(round(seconds * AUDIO_RATE))
    t = np.arange(n) / AUDIO_RATE
    f0 = 170 + 25 * np.sin(2 * np.pi * 0.7 * t) + 8 * np.sin(2 * np.pi * 5.5 * t)
    phase = 2 * np.pi * np.cumsum(f0) / AUDIO_RATE
    formants = np.array([1.0, 0.6, 0.45, 0.3, 0.2, 0.12])
    sig = sum(a * np.sin((k + 1) * phase) for k, a in enumerate(formants))
    sig += 0.05 * rng.standard_normal(n)
    env = np.interp(t, np.arange(len(envelope)) / fps, envelope)
    sig = sig * env / np.abs(sig).max()
    return (0.6 * 32767 * sig).astype(np.int16)


def jaw_maps(shape: tuple[int, int], lip_y: float, chin_y: float, mouth_x: float, mouth_w: float):
    """Unit displacement field (pixels down per unit opening) for the jaw and lower lip, and the mouth gap
    (where the field stretches the image between the lip corners) in [0, 1]."""
    width = 1.6 * mouth_w
    h, w = shape
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    gx = np.exp(-((x - mouth_x) ** 2) / (2 * (width / 2) ** 2))
    rise = np.clip((y - lip_y + 3) / 7, 0, 1)
    rise = rise * rise * (3 - 2 * rise)
    below = np.exp(-np.clip(y - chin_y, 0, None) ** 2 / (2 * (0.35 * (chin_y - lip_y)) ** 2))
    field = gx * rise * below
    stretch = np.clip(np.gradient(field, axis=0), 0, None)
    lens = np.clip(1 - ((x - mouth_x) / (0.45 * mouth_w)) ** 2, 0, 1)
    gap = stretch * lens
    return field, gap / max(gap.max(), 1e-6)


def make_demo_clip(out: str | Path, seconds: float = 3.0, fps: int = 24, size: int = 256, seed: int = 0) -> Path:
    """Write the demo clip (H.264 + AAC) to ``out`` and return its path."""
    from stitch.landmarks import FaceLandmarker

    if seconds <= 0 or fps <= 0 or size < 128:
        raise StitchError(f"demo clip: need seconds > 0, fps > 0, size >= 128 (got {seconds}, {fps}, {size})")
    img = photo()
    dets = FaceLandmarker(0).detect(img)
    if not dets:
        raise StitchError("demo clip: dlib found no face in matplotlib's grace_hopper.jpg")
    lm = dets[0].landmarks
    lip_y = float(lm[[61, 62, 63], 1].mean() + lm[[65, 66, 67], 1].mean()) / 2
    chin_y = float(lm[8, 1])
    mouth_x = float(lm[[48, 54], 0].mean())
    mouth_w = float(lm[54, 0] - lm[48, 0])
    field, stretch = jaw_maps(img.shape[:2], lip_y, chin_y, mouth_x, mouth_w)
    face_c = lm.mean(0)
    face_w = float(lm[16, 0] - lm[0, 0])

    n = int(round(seconds * fps))
    opening = syllables(n, fps, seed)
    t = np.arange(n) / fps
    rng = np.random.default_rng(seed)
    ph = rng.uniform(0, 2 * np.pi, 4)
    gx, gy = np.meshgrid(np.arange(img.shape[1], dtype=np.float32), np.arange(img.shape[0], dtype=np.float32))

    def frame(i: int) -> np.ndarray:
        drop = 0.05 * face_w * opening[i]  # jaw drop in source pixels
        src = cv2.remap(img, gx, (gy - drop * field).astype(np.float32), cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        dark = 1 - 0.8 * np.clip(drop / 5, 0, 1) * stretch
        src = (src * dark[..., None]).astype(np.uint8)
        window = face_w * (1.75 + 0.12 * np.sin(2 * np.pi * t[i] / seconds + ph[0]))
        cx = face_c[0] + 0.08 * face_w * np.sin(2 * np.pi * 0.5 * t[i] / seconds * 2 + ph[1])
        cy = face_c[1] + 0.06 * face_w * np.sin(2 * np.pi * 0.5 * t[i] / seconds * 2 + ph[2])
        roll = 4.0 * np.sin(2 * np.pi * t[i] / seconds + ph[3])
        m = cv2.getRotationMatrix2D((float(cx), float(cy)), float(roll), size / window)
        m[:, 2] += np.array([size / 2, size / 2]) - np.array([cx, cy])
        return cv2.warpAffine(src, m, (size, size), flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REFLECT)

    audio = voice(opening, fps, n / fps, seed)
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "voice.wav"
        write_wav(wav, audio[:, None], AUDIO_RATE)
        write_video(out, (frame(i) for i in range(n)), fps, audio_path=wav, total=n)
    log.info("demo clip: %s, %d frames at %d fps, %d px, face width %.0f px in the photo", out, n, fps, size, face_w)
    return Path(out)
