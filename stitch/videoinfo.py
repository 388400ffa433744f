"""Facts about a video file (:func:`probe`) and decoding it the way it is shown (:func:`decoded`, :func:`upright`).

One decoding pass gives the exact frame count (the frames that decode, not the container's count), every frame's
presentation time, grayscale or colour and the display rotation; unusable files are refused with one line naming
the file and what to do (:class:`stitch.errors.StitchError`).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from stitch.errors import StitchError


@dataclass(frozen=True)
class VideoInfo:
    """Facts about a video file: exact fps, decoded frame count, display size, duration (s), audio presence,
    and what the frames stage records for a faithful output: presentation times (``pts`` in ``time_base``,
    relative to the first frame), whether they are irregular (``vfr``), whether the picture is grayscale and the
    rotation (degrees counter-clockwise) its display matrix asks for, which :func:`iter_frames` applies."""

    fps: Fraction
    num_frames: int
    width: int
    height: int
    duration: float
    has_audio: bool
    audio_rate: int | None
    pts: tuple[int, ...] = ()
    time_base: Fraction | None = None
    vfr: bool = False
    grayscale: bool = False
    rotation: int = 0


#: the smallest frame side the face stages can work on (dlib finds faces of ~20 px at upsample 2)
MIN_SIDE = 32
_FIX_DAMAGED = "re-export the video or copy it again in full (or remux it, e.g. `ffmpeg -i IN -c copy OUT.mp4`)"


def open_media(path: str | Path):
    """The opened container; a missing, empty or unreadable file is one line naming it."""
    path = Path(path)
    if not path.is_file():
        raise StitchError(f"{path}: video file not found")
    if path.stat().st_size == 0:
        raise StitchError(f"{path}: is empty (0 bytes); copy the video again")
    try:
        return av.open(str(path))
    except av.error.FFmpegError as e:
        raise StitchError(f"{path}: not a readable video ({e.strerror}); give an mp4/mov/mkv/webm video") from None


def video_stream(c, path):
    """The first video stream; refuses images and files without video with one clear line."""
    fmt = c.format.name
    if c.streams.video and (fmt == "image2" or fmt.endswith("_pipe")):  # FFmpeg's still-image demuxers
        raise StitchError(f"{path}: is an image ({fmt}), not a video; give a video file")
    if not c.streams.video:
        kind = " (it is an audio file)" if c.streams.audio else ""
        raise StitchError(f"{path}: has no video stream{kind}; give a video file")
    return c.streams.video[0]


def decoded(c, vs, path) -> Iterator:
    """Decoded frames of ``vs``; a decoding error is one line saying the file is damaged."""
    if not vs.codec_context.is_open:  # a second pass over the same stream (after a seek) keeps the first's
        vs.thread_type = "AUTO"
    k = 0
    try:
        for frame in c.decode(vs):
            yield frame
            k += 1
    except av.error.FFmpegError as e:
        raise StitchError(f"{path}: truncated or damaged (decoding stops after {k} frames: {e.strerror}); "
                          + _FIX_DAMAGED) from None


def _rotation(frame, path) -> int:
    """Counter-clockwise display rotation of ``frame`` (0, 90, 180 or 270)."""
    deg = float(frame.rotation or 0)
    k = round(deg / 90)
    if abs(deg - 90 * k) > 1:
        raise StitchError(f"{path}: its rotation tag asks for {deg:.0f} degrees, only multiples of 90 are supported; "
                          "re-export it upright")
    return (90 * k) % 360


def display_rotation(path: str | Path) -> int:
    """The counter-clockwise rotation (0, 90, 180, 270) the video's display matrix asks for (first frame)."""
    with open_media(path) as c:
        vs = video_stream(c, path)
        for frame in decoded(c, vs, path):
            return _rotation(frame, path)
    return 0


def upright(frame, path) -> np.ndarray:
    """The frame as displayed (its display matrix's rotation applied), C-contiguous uint8 RGB."""
    arr = frame.to_ndarray(format="rgb24")
    k = _rotation(frame, path) // 90
    return np.ascontiguousarray(np.rot90(arr, k) if k else arr)


def _is_gray(frame) -> bool:
    """Grayscale picture: a gray pixel format, or neutral chroma (|U-128|, |V-128| <= 3 everywhere)."""
    if frame.format.name.startswith("gray"):
        return True
    chroma = frame.to_ndarray(format="yuv444p")[1:]
    return int(np.abs(chroma.astype(np.int16) - 128).max()) <= 3


def _timing(pts: list, tb: Fraction | None) -> tuple[tuple[int, ...], Fraction | None, bool]:
    """(pts relative to the first frame, their time base, irregular?); regular frame times when pts are unusable."""
    if tb is None or not pts or any(p is None for p in pts) or any(b <= a for a, b in zip(pts, pts[1:])):
        return (), None, False
    rel = np.asarray(pts, np.int64) - pts[0]
    d = np.diff(rel)
    vfr = len(d) > 0 and int(d.max() - d.min()) > max(1, round(0.02 * float(np.median(d))))
    return tuple(int(p) for p in rel), tb, bool(vfr)


def probe(path: str | Path) -> VideoInfo:
    """Read a video's facts in one decoding pass. The frame count is the number of frames that decode.

    Refused with one line naming the file: missing, empty, unreadable, an image, audio only, no frames, smaller
    than :data:`MIN_SIDE`, truncated (the container lists more frames than the file holds) or damaged."""
    size = Path(path).stat().st_size if Path(path).is_file() else 0
    with open_media(path) as c:
        vs = video_stream(c, path)
        fps = vs.average_rate or vs.guessed_rate or vs.base_rate
        if not fps:
            raise StitchError(f"{path}: cannot determine the frame rate; re-export it as mp4")
        fps = Fraction(fps.numerator, fps.denominator)
        listed, tb = vs.frames, vs.time_base
        audio = c.streams.audio[0] if c.streams.audio else None
        audio_rate = audio.codec_context.sample_rate if audio is not None else None
        pts, gray, rotation, first = [], True, 0, None
        for frame in decoded(c, vs, path):
            if first is None:
                first, rotation = frame, _rotation(frame, path)
            gray = gray and _is_gray(frame)
            pts.append(frame.pts)
        packets = _packets(path, size)
    n = len(pts)
    if n == 0:
        raise StitchError(f"{path}: contains no video frames that decode; " + _FIX_DAMAGED)
    if packets < listed:
        raise StitchError(f"{path}: truncated or damaged (the container lists {listed} video frames, the file holds "
                          f"{packets}); " + _FIX_DAMAGED)
    width, height = first.width, first.height
    if rotation in (90, 270):
        width, height = height, width
    if min(width, height) < MIN_SIDE:
        raise StitchError(f"{path}: is {width}x{height} px, too small to find a face in; give a video at least "
                          f"{MIN_SIDE} px on each side")
    rel, time_base, vfr = _timing(pts, Fraction(tb.numerator, tb.denominator) if tb else None)
    return VideoInfo(fps, n, width, height, float(n / fps), audio is not None, audio_rate, rel, time_base, vfr,
                     gray, rotation)


def _packets(path, size: int) -> int:
    """Video packets whose data lies wholly inside the file (a cut file's index points past its end)."""
    with open_media(path) as c:
        vs = c.streams.video[0]
        return sum(1 for p in c.demux(vs) if p.size > 0 and (p.pos is None or p.pos < 0 or p.pos + p.size <= size))
