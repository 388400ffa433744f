"""Video and audio I/O with PyAV (its wheel bundles libx264 and AAC; OpenCV has no H.264 writer here).

Frames are C-contiguous uint8 RGB arrays (H, W, 3). Frame rates are exact fractions (e.g. 1350/61), never
rounded. Audio is kept aside as 16-bit PCM WAV (stdlib ``wave``) and muxed back as AAC. Every writer writes to a
temporary file next to the target and renames it (``stitch.atomic``), so a failure never leaves a half-written output.
"""

from __future__ import annotations

import itertools
import logging
import os
import wave
from collections.abc import Iterable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
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


def iter_frames(path: str | Path, start: int = 0, times: dict | None = None) -> Iterator[np.ndarray]:
    """Decode every frame upright (the display matrix's rotation applied) as a C-contiguous uint8 RGB array
    (dlib rejects PyAV's strided arrays), from frame ``start`` (counted as decoded, from 0).

    ``times`` (``{"pts": [...], "time_base": Fraction}``, each frame's time relative to the first, as
    ``frames/info.json`` keeps them) lets a later ``start`` seek to the keyframe before it instead of decoding
    everything before it; the frame reached is checked against its time, and a file whose times do not match
    (or without ``times``) is decoded from the beginning."""
    if start > 0 and times:
        with open_media(path) as c:
            vs = video_stream(c, path)
            frames = _seek(c, vs, path, start, times)
            if frames is not None:
                for frame in frames:
                    yield upright(frame, path)
                return
    with open_media(path) as c:
        vs = video_stream(c, path)
        for frame in _skip(decoded(c, vs, path), start):
            yield upright(frame, path)


def _skip(frames: Iterator, n: int) -> Iterator:
    for i, frame in enumerate(frames):
        if i >= n:
            yield frame


def _seek(c, vs, path, start: int, times: dict | None) -> Iterator | None:
    """Decoded frames from frame ``start`` on after a seek, or None when the frame times cannot locate it."""
    if start >= len(times["pts"]) or vs.time_base is None:
        return None
    first = next(decoded(c, vs, path), None)
    if first is None or first.pts is None:
        return None
    target = first.pts + round(Fraction(times["pts"][start]) * Fraction(times["time_base"]) / vs.time_base)
    c.seek(target, stream=vs, backward=True, any_frame=False)
    frames = decoded(c, vs, path)
    for frame in frames:
        if frame.pts is None or frame.pts > target:
            return None
        if frame.pts == target:
            return _chain(frame, frames)
    return None


def read_frames(path: str | Path, start: int = 0, count: int | None = None, times: dict | None = None) -> np.ndarray:
    """Frames ``start .. start + count`` (all remaining when ``count`` is None) as (N, H, W, 3) uint8 (``times``:
    see :func:`iter_frames`)."""
    out = []
    for f in iter_frames(path, start, times):
        if count is not None and len(out) >= count:
            break
        out.append(f)
    if not out:
        raise StitchError(f"{path}: no frames at index {start}")
    return np.stack(out)


# ----------------------------------------------------------------------------------------------- audio


def extract_audio(path: str | Path, out_wav: str | Path) -> bool:
    """Decode the first audio stream to 16-bit PCM WAV at its own rate and channel count (up to 2), written as it
    decodes (atomically): memory does not grow with the length of the audio.

    Returns False (and writes nothing) when the video has no audio.
    """
    with open_media(path) as c:
        if not c.streams.audio:
            return False
        stream = c.streams.audio[0]
        rate = stream.codec_context.sample_rate
        channels = min(stream.codec_context.channels, 2)
        resampler = av.AudioResampler(format="s16", layout="stereo" if channels == 2 else "mono", rate=rate)
        with wav_writer(out_wav, channels, rate) as w:
            for frame in itertools.chain(c.decode(stream), [None]):  # None: the resampler's last samples
                for rf in resampler.resample(frame):
                    w.writeframes(np.ascontiguousarray(rf.to_ndarray().reshape(-1), np.int16).tobytes())
    return True


@contextmanager
def wav_writer(path: str | Path, channels: int, rate: int) -> Iterator[wave.Wave_write]:
    """An open 16-bit PCM WAV writer on ``path``'s temporary, renamed into place when the block ends without error
    (``stitch.atomic``); ``writeframes`` takes interleaved int16 bytes."""
    with atomic_path(path) as tmp, wave.open(str(tmp), "wb") as w:
        w.setnchannels(int(channels))
        w.setsampwidth(2)
        w.setframerate(int(rate))
        yield w


def write_wav(path: str | Path, samples: np.ndarray, rate: int) -> None:
    """Write (N, channels) int16 samples as PCM WAV, atomically."""
    samples = np.ascontiguousarray(samples, dtype=np.int16)
    assert samples.ndim == 2 and samples.shape[1] in (1, 2), samples.shape
    with wav_writer(path, samples.shape[1], rate) as w:
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
    """Encode RGB frames as H.264 (+ AAC from a WAV); returns the number of frames (see :class:`VideoWriter`)."""
    with VideoWriter(path, fps, audio_path, crf, total, pts, time_base) as writer:
        for frame in frames:
            writer.write(frame)
    return writer.n


def encoder_threads() -> int:
    """x264's threads: the job's thread budget (Snakemake sets ``OMP_NUM_THREADS`` to the rule's ``threads:`` for
    every job), not x264's default of 1.5 per core of the whole machine; 0 (x264's choice) outside a job."""
    try:
        return max(0, int(os.environ.get("OMP_NUM_THREADS", "0")))
    except ValueError:
        return 0


class VideoWriter:
    """Write RGB frames one at a time as H.264 (+ AAC from a WAV at the end): ``with VideoWriter(...) as w:
    w.write(frame)``. The file appears (atomically) only when the block ends without an error.

    Frame ``n`` is shown at ``n / fps``, or at ``pts[n] * time_base`` when ``pts`` are given (a variable frame
    rate source keeps every frame's time). Odd frame sizes use yuv444p (4:2:0 needs even sizes) so the output
    keeps the input size exactly. No display matrix is written: frames are stored as they are to be shown.
    """

    def __init__(self, path, fps, audio_path=None, crf: int = 18, total: int | None = None,
                 pts: Sequence[int] | None = None, time_base: Fraction | None = None):
        self.path, self.audio_path, self.crf, self.total, self.pts = Path(path), audio_path, crf, total, pts
        self.fps = Fraction(fps).limit_denominator(1_000_000)
        self.tb = Fraction(time_base) if pts is not None else 1 / self.fps
        self.n = 0
        self._out = self._vs = self._audio = self._bar = None
        self._shape: tuple[int, int, int] | None = None

    def __enter__(self) -> VideoWriter:
        self._stack = ExitStack()
        self._tmp = self._stack.enter_context(atomic_path(self.path))
        return self

    def _open(self, h: int, w: int) -> None:
        self._out = out = av.open(str(self._tmp), "w", format="mp4")
        self._vs = vs = out.add_stream("libx264", rate=self.fps)
        vs.width, vs.height = w, h
        vs.pix_fmt = "yuv420p" if w % 2 == 0 and h % 2 == 0 else "yuv444p"
        vs.codec_context.time_base = self.tb
        vs.options = {"crf": str(self.crf), "preset": "medium"}
        vs.codec_context.thread_count = encoder_threads()
        self._audio = add_audio_stream(out, self.audio_path) if self.audio_path is not None else None
        self._bar = tqdm(total=self.total, desc=f"encode {self.path.name}", leave=False, mininterval=5)
        self._shape = (h, w, 3)

    def write(self, frame: np.ndarray) -> None:
        frame = np.ascontiguousarray(frame, dtype=np.uint8)
        if self._out is None:
            self._open(*frame.shape[:2])
        if frame.shape != self._shape:
            raise StitchError(f"{self.path}: frame {self.n} is {frame.shape}, expected {self._shape}")
        if self.pts is not None and self.n >= len(self.pts):
            raise StitchError(f"{self.path}: more frames than the {len(self.pts)} presentation times given")
        vf = av.VideoFrame.from_ndarray(frame, format="rgb24")
        vf.pts = self.n if self.pts is None else int(self.pts[self.n])
        vf.time_base = self.tb
        self._out.mux(self._vs.encode(vf))
        self.n += 1
        self._bar.update()

    def _finish(self) -> None:
        if self._out is None:
            raise StitchError(f"{self.path}: no frames to write")
        self._bar.close()
        self._out.mux(self._vs.encode(None))
        if self._audio is not None:
            encode_audio(self._out, *self._audio)
        self._out.close()

    def __exit__(self, et, ev, tb) -> bool:
        if et is None:
            try:
                self._finish()
            except BaseException as e:
                if not self._stack.__exit__(type(e), e, e.__traceback__):
                    raise
                return False
        elif self._out is not None:
            self._out.close()
        return bool(self._stack.__exit__(et, ev, tb))


def _chain(first, rest):
    yield first
    yield from rest


def add_audio_stream(out, wav_path: str | Path):
    """An AAC stream for the WAV's samples (None when it has none): (stream, wav path, rate, layout)."""
    with wave.open(str(wav_path), "rb") as w:
        if w.getnframes() == 0:
            return None
        if w.getsampwidth() != 2:
            raise StitchError(f"{wav_path}: expected 16-bit PCM WAV, got {8 * w.getsampwidth()}-bit")
        rate, layout = w.getframerate(), "stereo" if w.getnchannels() == 2 else "mono"
    st = out.add_stream("aac", rate=rate, layout=layout)
    st.codec_context.time_base = Fraction(1, rate)
    return st, wav_path, rate, layout


def encode_audio(out, st, wav_path: str | Path, rate: int, layout: str, chunk: int = 1024) -> None:
    """Encode and mux the WAV of :func:`add_audio_stream` (after the video: the muxer interleaves), read
    ``chunk`` samples at a time: a long video's audio is never held whole."""
    with wave.open(str(wav_path), "rb") as w:
        i = 0
        while len(data := w.readframes(chunk)):
            part = np.frombuffer(data, np.int16).reshape(1, -1)
            af = av.AudioFrame.from_ndarray(part, format="s16", layout=layout)
            af.sample_rate = rate
            af.pts = i
            af.time_base = Fraction(1, rate)
            out.mux(st.encode(af))
            i += part.size // w.getnchannels()
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
