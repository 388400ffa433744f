"""Stage ``detect``, one shard of a video: every face in its frames (dlib HOG, optionally on a scaled-down copy
of HD frames) with its 68 landmarks fitted at full resolution (:class:`stitch.landmarks.FaceLandmarker`). The
``landmarks`` stage links the shards' detections into face tracks over the whole video."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np

from stitch.landmarks import Detection, FaceLandmarker, detect_video
from stitch.stagefiles import Detections

log = logging.getLogger(__name__)


def to_file(dets: list[list[Detection]]) -> Detections:
    """Per-frame detections as the flat stage file."""
    flat = [(t, d) for t, frame in enumerate(dets) for d in frame]
    return Detections(frame=np.array([t for t, _ in flat], np.int64).reshape(-1),
                      boxes=np.array([d.box for _, d in flat], np.int64).reshape(-1, 4),
                      scores=np.array([d.score for _, d in flat], np.float64).reshape(-1),
                      landmarks=np.array([d.landmarks for _, d in flat], np.float64).reshape(-1, 68, 2),
                      num_frames=len(dets))


def from_files(paths) -> list[list[Detection]]:
    """The shards' detection files (in frame order) as per-frame detection lists over the whole video."""
    out: list[list[Detection]] = []
    for path in paths:
        d = Detections.load(path)
        frames: list[list[Detection]] = [[] for _ in range(d.num_frames)]
        for t, box, score, lm in zip(d.frame, d.boxes, d.scores, d.landmarks):
            frames[int(t)].append(Detection(tuple(int(v) for v in box), float(score), lm))
        out += frames
    return out


def run(video, info_json, out_npz, shard: int = 0, shard_frames: int | None = None, upsample: int = 0,
        detect_long_side: int = 0) -> int:
    """Detect and landmark every face of frames ``shard * shard_frames ..`` (all without ``shard_frames``);
    returns the number of frames with a face."""
    from stitch.errors import StitchError
    from stitch.segments import source_frames
    from stitch.shards import shard_range

    info = json.loads(Path(info_json).read_text())
    start, stop = shard_range(shard, info["num_frames"], shard_frames)
    dets = detect_video(source_frames(video, info, start, stop), FaceLandmarker(upsample, detect_long_side),
                        total=stop - start)
    if len(dets) != stop - start:
        raise StitchError(f"{video}: decoded {len(dets)} frames from frame {start}, the shard has {stop - start}")
    to_file(dets).save(out_npz)
    found = sum(1 for d in dets if d)
    log.info("frames %d-%d: a face on %d of %d (%d detections)", start, stop - 1, found, len(dets),
             sum(len(d) for d in dets))
    return found
