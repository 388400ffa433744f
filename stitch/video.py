"""Video and audio I/O with PyAV (its wheel bundles libx264 and AAC; OpenCV has no H.264 writer here).

Frames are C-contiguous uint8 RGB arrays (H, W, 3). Frame rates are exact fractions (e.g. 1350/61), never
rounded. Audio is kept aside as 16-bit PCM WAV (stdlib ``wave``) and muxed back as AAC. Every writer writes to a
temporary file next to the target and renames it (``stitch.atomic``), so a failure never leaves a half-written output.
"""

from __future__ import annotations

import logging
import wave
from collections.abc import Iterable, Iterator, Sequence
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from stitch.atomic import atomic_path
from stitch.errors import StitchError
from stitch.progress import tqdm
from stitch.videoinfo import (  # noqa: F401  (the public names of video I/O live here)
    VideoInfo, decoded, display_rotation, open_media, probe, upright, video_stream,
)

log = logging.getLogger(__name__)


def iter_frames(path: str | Path) -> Iterator[np.ndarray]:
    """Decode every frame upright (the display matrix's rotation applied) as a C-contiguous uint8 RGB array
    (dlib rejects PyAV's strided arrays)."""
    with open_media(path) as c:
        vs = video_stream(c, path)
        for frame in decoded(c, vs, path):
            yield upright(frame, path)


def read_frames(path: str | Path, start: int = 0, count: int | None = None) -> np.ndarray:
    """Frames ``start .. start + count`` (all remaining when ``count`` is None) as (N, H, W, 3) uint8."""
    out = []
    for i, f in enumerate(iter_frames(path)):
        if i < start:
            continue
        if count is not None and len(out) >= count:
            break
        out.append(f)
    if not out:
        raise StitchError(f"{path}: no frames at index {start}")
    return np.stack(out)


# ----------------------------------------------------------------------------------------------- audio


def extract_audio(path: str | Path, out_wav: str | Path) -> bool:
    """Decode the first audio stream to 16-bit PCM WAV at its own rate and channel count.

    Returns False (and writes nothing) when the video has no audio.
    """
    with open_media(path) as c:
        if not c.streams.audio:
            return False
        stream = c.streams.audio[0]
        rate = stream.codec_context.sample_rate
        channels = min(stream.codec_context.channels, 2)
        layout = "stereo" if channels == 2 else "mono"
        resampler = av.AudioResampler(format="s16", layout=layout, rate=rate)
        chunks = []
        for frame in c.decode(stream):
            for rf in resampler.resample(frame):
                chunks.append(rf.to_ndarray().reshape(-1))
        for rf in resampler.resample(None):
            chunks.append(rf.to_ndarray().reshape(-1))
    samples = np.concatenate(chunks) if chunks else np.zeros(0, np.int16)
    write_wav(out_wav, samples.reshape(-1, channels), rate)
    return True


def write_wav(path: str | Path, samples: np.ndarray, rate: int) -> None:
    """Write (N, channels) int16 samples as PCM WAV, atomically."""
    samples = np.ascontiguousarray(samples, dtype=np.int16)
    assert samples.ndim == 2 and samples.shape[1] in (1, 2), samples.shape
    with atomic_path(path) as tmp:
        with wave.open(str(tmp), "wb") as w:
            w.setnchannels(samples.shape[1])
            w.setsampwidth(2)
            w.setframerate(int(rate))
            w.writeframes(samples.tobytes())


def read_wav(path: str | Path) -> tuple[np.ndarray, int]:
    """(N, channels) int16 samples and the sample rate of a 16-bit PCM WAV."""
    with wave.open(str(path), "rb") as w:
        if w.getsampwidth() != 2:
            raise StitchError(f"{path}: expected 16-bit PCM WAV, got {8 * w.getsampwidth()}-bit")
        data = np.frombuffer(w.readframes(w.getnframes()), np.int16)
        return data.reshape(-1, w.getnchannels()), w.getframerate()


def audio_duration(path: str | Path) -> float:
    """Duration in seconds of the first audio stream of a media file (0.0 when there is none)."""
    with open_media(path) as c:
        if not c.streams.audio:
            return 0.0
        stream = c.streams.audio[0]
        n = sum(f.samples for f in c.decode(stream))
        return n / stream.codec_context.sample_rate


# ----------------------------------------------------------------------------------------------- writing


def write_video(
    path: str | Path,
    frames: Iterable[np.ndarray],
    fps: Fraction | int | float,
    audio_path: str | Path | None = None,
    crf: int = 18,
    total: int | None = None,
    pts: Sequence[int] | None = None,
    time_base: Fraction | None = None,
) -> int:
    """Encode RGB frames as H.264 (+ AAC from a WAV); returns the number of frames.

    Frame ``n`` is shown at ``n / fps``, or at ``pts[n] * time_base`` when ``pts`` are given (a variable frame
    rate source keeps every frame's time). Odd frame sizes use yuv444p (4:2:0 needs even sizes) so the output
    keeps the input size exactly. No display matrix is written: frames are stored as they are to be shown.
    """
    fps = Fraction(fps).limit_denominator(1_000_000)
    tb = Fraction(time_base) if pts is not None else 1 / fps
    it = iter(frames)
    first = next(it, None)
    if first is None:
        raise StitchError(f"{path}: no frames to write")
    h, w = np.asarray(first).shape[:2]
    n = 0
    with atomic_path(path) as tmp:
        with av.open(str(tmp), "w", format="mp4") as out:
            vs = out.add_stream("libx264", rate=fps)
            vs.width, vs.height = w, h
            vs.pix_fmt = "yuv420p" if w % 2 == 0 and h % 2 == 0 else "yuv444p"
            vs.codec_context.time_base = tb
            vs.options = {"crf": str(crf), "preset": "medium"}
            audio = _add_audio_stream(out, audio_path) if audio_path is not None else None
            bar = tqdm(total=total, desc=f"encode {Path(path).name}", leave=False, mininterval=5)
            for frame in _chain(first, it):
                frame = np.ascontiguousarray(frame, dtype=np.uint8)
                if frame.shape != (h, w, 3):
                    raise StitchError(f"{path}: frame {n} is {frame.shape}, expected {(h, w, 3)}")
                if pts is not None and n >= len(pts):
                    raise StitchError(f"{path}: more frames than the {len(pts)} presentation times given")
                vf = av.VideoFrame.from_ndarray(frame, format="rgb24")
                vf.pts = n if pts is None else int(pts[n])
                vf.time_base = tb
                out.mux(vs.encode(vf))
                n += 1
                bar.update()
            bar.close()
            out.mux(vs.encode(None))
            if audio is not None:
                _encode_audio(out, *audio)
    return n


def _chain(first, rest):
    yield first
    yield from rest


def _add_audio_stream(out, wav_path: str | Path):
    samples, rate = read_wav(wav_path)
    if len(samples) == 0:
        return None
    layout = "stereo" if samples.shape[1] == 2 else "mono"
    st = out.add_stream("aac", rate=rate, layout=layout)
    st.codec_context.time_base = Fraction(1, rate)
    return st, samples, rate, layout


def _encode_audio(out, st, samples: np.ndarray, rate: int, layout: str, chunk: int = 1024) -> None:
    for i in range(0, len(samples), chunk):
        part = np.ascontiguousarray(samples[i : i + chunk]).reshape(1, -1)
        af = av.AudioFrame.from_ndarray(part, format="s16", layout=layout)
        af.sample_rate = rate
        af.pts = i
        af.time_base = Fraction(1, rate)
        out.mux(st.encode(af))
    out.mux(st.encode(None))


def cut_clip(src: str | Path, dst: str | Path, start_frame: int, num_frames: int, crf: int = 18) -> VideoInfo:
    """Cut ``num_frames`` frames (and the matching audio span) out of ``src`` into ``dst`` at the same fps."""
    info = probe(src)
    frames = read_frames(src, start_frame, num_frames)
    wav = None
    try:
        if info.has_audio:
            wav = Path(dst).with_name(f".{Path(dst).stem}.cut.wav")
            full = wav.with_suffix(".full.wav")
            extract_audio(src, full)
            samples, rate = read_wav(full)
            full.unlink()
            a = int(round(start_frame / info.fps * rate))
            b = int(round((start_frame + len(frames)) / info.fps * rate))
            write_wav(wav, samples[a:b], rate)
        write_video(dst, iter(frames), info.fps, audio_path=wav, crf=crf, total=len(frames))
    finally:
        if wav is not None:
            wav.unlink(missing_ok=True)
    return probe(dst)
