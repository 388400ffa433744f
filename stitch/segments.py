"""Frame shards and encoded video segments (issue #12).

A video's frames are cut into shards of ``shard_frames`` frames; the per-shard stages write each shard's output
frames as an H.264 segment at the final codec settings, stamped with the source's own frame times. A segment is
its own encode, so it starts on a keyframe, and the final video is the segments' packets joined without
re-encoding (:func:`concat`) with the source audio muxed back: no raw frame array is ever written to disk.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Iterable, Iterator, Sequence
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from stitch.atomic import atomic_path
from stitch.errors import StitchError
from stitch.frames import timing
from stitch.shards import shard_range
from stitch.video import VideoWriter, add_audio_stream, encode_audio, iter_frames

log = logging.getLogger(__name__)


def source_frames(video, info: dict, start: int, stop: int) -> Iterator[np.ndarray]:
    """The decoded frames ``start .. stop`` of ``video`` (``info``: its ``frames/info.json``; seeks to ``start``,
    :func:`stitch.video.iter_frames`)."""
    return itertools.islice(iter_frames(video, start, frame_times(info)), stop - start)


def frame_times(info: dict) -> dict:
    """``{"pts", "time_base"}``: every frame's time relative to the first (``frames/info.json``), for
    :func:`stitch.video.iter_frames` seeking and for stamping segments: the source's pts for a variable frame rate
    (:func:`stitch.frames.timing`), else frame ``n`` at ``n / fps``."""
    return timing(info) or {"pts": list(range(info["num_frames"])),
                            "time_base": 1 / Fraction(info["fps_num"], info["fps_den"])}


def segment_start(times: dict, start: int) -> Fraction:
    """The time (s) of frame ``start`` relative to the video's first frame (``times``: :func:`frame_times`)."""
    return Fraction(times["pts"][start]) * times["time_base"]


def segment_writer(path, info: dict, start: int, count: int) -> VideoWriter:
    """A :class:`stitch.video.VideoWriter` for ``count`` frames, frames ``start ..`` of the video, stamped with their
    source times relative to the segment's first frame (:func:`concat` moves them to :func:`segment_start`; an mp4
    stores a segment's own start offset only to the millisecond, which would shift a variable frame rate's times)."""
    times = frame_times(info)
    pts = times["pts"][start : start + count]
    return VideoWriter(path, Fraction(info["fps_num"], info["fps_den"]), total=count, pts=[t - pts[0] for t in pts],
                       time_base=times["time_base"])


def write_segment(path, frames: Iterable[np.ndarray], info: dict, start: int, count: int) -> int:
    """Encode ``count`` frames, frames ``start ..`` of the video, as a segment (:func:`segment_writer`)."""
    with segment_writer(path, info, start, count) as writer:
        for frame in frames:
            writer.write(frame)
    if writer.n != count:
        raise StitchError(f"{path}: {writer.n} frames written, shard has {count}; rerun the job")
    return writer.n


def concat(segments: Sequence[str | Path], out, info: dict, audio_path=None) -> int:
    """Join the segments' video packets in order into ``out`` without re-encoding and mux ``audio_path`` (WAV,
    encoded as :func:`stitch.video.write_video` does); checks that the frames add up to ``info``'s count.

    Each segment moves to the source time of its first frame (the frames before it counted from the earlier
    segments). Decode times are set as the encoder sets them in one piece: the ``i``-th packet decodes at the
    ``(i - k)``-th presentation time, ``k`` the first segment's B-frame delay (in frames), so a short last
    segment, which an encoder starts without delay, does not shift the stream's timing."""
    if not segments:
        raise StitchError(f"{out}: no segments to join")
    offsets, pts, lead = _timeline(segments, info)
    order = sorted(pts)
    k = len(lead)
    n = 0
    with atomic_path(out) as tmp, av.open(str(tmp), "w", format="mp4") as dst:
        with av.open(str(segments[0])) as first:
            vs = dst.add_stream_from_template(first.streams.video[0])
        audio = add_audio_stream(dst, audio_path) if audio_path is not None else None
        for seg, offset in zip(segments, offsets):
            with av.open(str(seg)) as src:
                for packet in src.demux(src.streams.video[0]):
                    if packet.size == 0:
                        continue
                    packet.pts = packet.pts + offset
                    packet.dts = lead[n] if n < k else order[n - k]
                    if packet.dts > packet.pts:
                        raise StitchError(f"{seg}: a frame decodes after it is shown once joined; rerun the paste jobs")
                    packet.stream = vs
                    dst.mux(packet)
                    n += 1
        if audio is not None:
            encode_audio(dst, *audio)
    log.info("joined %d segments into %s (%d frames, audio=%s)", len(segments), out, n, audio is not None)
    return n


def _timeline(segments, info: dict) -> tuple[list[int], list[int], list[int]]:
    """(each segment's pts offset, every packet's joined pts in decode order, the first segment's decode times
    before its first presentation time); checks sizes, time bases and the frame count."""
    offsets, pts, lead, n, ref = [], [], [], 0, None
    times = frame_times(info)
    for k, seg in enumerate(segments):
        if n >= info["num_frames"]:
            raise StitchError(f"{seg}: the segments have more frames than the video's {info['num_frames']}")
        with av.open(str(seg)) as src:
            stream = src.streams.video[0]
            key = (stream.time_base, stream.codec_context.width, stream.codec_context.height)
            if ref is not None and key != ref:
                raise StitchError(f"{seg}: time base or size differs from {segments[0]}; rerun the paste jobs")
            ref = key
            offsets.append(round(segment_start(times, n) / stream.time_base))
            packets = [(p.pts, p.dts) for p in src.demux(stream) if p.size]
        if k == 0:
            lead = [d for _, d in packets if d < min(p for p, _ in packets)]
        pts += [p + offsets[-1] for p, _ in packets]
        n += len(packets)
    if n != info["num_frames"]:
        raise StitchError(f"{segments[0]} ...: the segments have {n} frames, the video {info['num_frames']}; rerun the paste jobs")
    return offsets, pts, lead
