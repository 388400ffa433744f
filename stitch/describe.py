"""Stages ``describe_source`` and ``describe``: the evaluation's per-frame data, one shard of frames per job.

``describe_source`` (:func:`run_source`, once per video and shard): dlib identity descriptors, landmarks and the
attribute probe (``stitch.probes``: age, P(male), smile score; ArcFace embeddings when the pack ships them) of the
source frames of one shard. ``describe`` (:func:`run`, per video × method × edit × shard): the same for the frames of
the method's encoded video (seeked to the shard: every segment starts on a keyframe), plus the method's
reconstruction quality at crop resolution (``stitch.quality``) and the seam columns (``stitch.seam``) of those frames.
Rules ``metrics_source`` and ``metrics`` join the shards (:func:`join`, ``stitch.metrics``), so no evaluation job
decodes more than one shard of frames and a cluster describes a video's shards in parallel (issue #12).
"""

from __future__ import annotations

import itertools
import json
import logging
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from stitch.atomic import save_npz
from stitch.errors import StitchError
from stitch.shards import shard_range

log = logging.getLogger(__name__)

QUALITY = "quality_"  # prefix of the reconstruction quality arrays in a describe shard (quality_psnr, ...)
SEAM = ("seam_mse", "seam_grad", "sharpness_ratio")


def describe_frames(frames: Iterable[np.ndarray], probe, arcface=None, progress: bool = False,
                    chunk: int = 8, detect_long_side: int = 0, total: int | None = None) -> dict[str, np.ndarray]:
    """Per-frame identity descriptors + attributes: ``desc`` (T, 128) raw dlib (NaN rows = no face), ``found``,
    ``landmarks`` (T, 68, 2), ``age``, ``p_male``, ``smile`` (NaN where no face), ``arcface`` when given.
    ``frames`` (an array or an iterator of decoded frames) is described ``chunk`` frames at a time, so a video is
    never held whole in memory. ``detect_long_side``: faces are detected on copies scaled down to it
    (``stitch.attributes.face_descriptor``; the video's ``landmarks.detect_long_side``)."""
    from stitch.probes import attributes, frame_descriptors
    from stitch.progress import tqdm

    parts = []
    frames = iter(tqdm(frames, desc="describe", unit="frame", disable=not progress, mininterval=10, total=total))
    while block := list(itertools.islice(frames, chunk)):
        desc, found, lm = frame_descriptors(np.stack(block), detect_long_side=detect_long_side)
        found = np.asarray(found, bool)
        part = {"desc": np.asarray(desc, np.float64), "found": found, "landmarks": np.asarray(lm, np.float64)}
        if arcface is not None:
            part["arcface"] = arcface.embed_many(block, landmarks=np.where(found[:, None, None], lm, np.nan),
                                                 progress=False)
        parts.append(part)
    if not parts:
        raise StitchError("describe_frames: no frames")
    out = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    arc = {"arcface": out.pop("arcface")} if "arcface" in out else {}
    return {**out, **attributes(probe, out["desc"], out["found"], out["landmarks"]), **arc}


def arcface_of(pack_dir, device="cpu"):
    """The pack's ArcFace identity model, or None when the pack ships no ArcFace weights."""
    from stitch.packs import Pack

    pack = Pack.open(pack_dir)
    if not pack.has("arcface"):
        return None
    from stitch.dlib_models import dlib_landmarks
    from stitch.models.face_id import ArcFaceID

    return ArcFaceID.from_file(pack.path("arcface"), device, landmarks_of=dlib_landmarks)


def describe_shard(video, info: dict, shard: int, shard_frames: int | None, pack_dir, probe_path, device="cpu",
                   detect_long_side: int = 0) -> dict[str, np.ndarray]:
    """:func:`describe_frames` of frames ``shard_range(shard)`` of ``video`` (``info``: the source's
    ``frames/info.json``, whose frame times the pipeline's videos share); a video with fewer frames there is
    a one-line error naming it."""
    from stitch.probes import AttributeProbe
    from stitch.segments import source_frames

    start, stop = shard_range(shard, info["num_frames"], shard_frames)
    d = describe_frames(source_frames(video, info, start, stop), AttributeProbe.load(probe_path),
                        arcface_of(pack_dir, device), True, detect_long_side=detect_long_side, total=stop - start)
    if len(d["found"]) != stop - start:
        raise StitchError(f"{video}: {len(d['found'])} frames from frame {start}, shard {shard} has {stop - start}; "
                          "rerun the stages that write it")
    return d


def run_source(video, info_json, shard: int, shard_frames: int | None, pack_dir, probe_path, out_npz, device="cpu",
               detect_long_side: int = 0) -> None:
    """Stage ``describe_source``: :func:`describe_shard` of the source video, saved to ``out_npz``.

    ``probe_path``: the attribute probe's weights, its ``.json`` beside them (the rules pass the shipped
    ``resources/probes/attributes.safetensors`` as an input). ``detect_long_side``: as :func:`describe_frames`."""
    t0 = time.time()
    info = json.loads(Path(info_json).read_text())
    d = describe_shard(video, info, shard, shard_frames, pack_dir, probe_path, device, detect_long_side)
    save_npz(out_npz, **d)
    n = len(d["found"])
    log.info("source shard %d: %d frames, face found on %d, %.2f s/frame", shard, n, int(d["found"].sum()),
             (time.time() - t0) / n)


def run(source_video, edited_video, info_json, shard: int, shard_frames: int | None, crops_npz, recon_npz, masks_npz,
        quads_npz, pack_dir, probe_path, out_npz, feather: bool = True, device="cpu", detect_long_side: int = 0) -> None:
    """Stage ``describe``, one shard of one video × method × edit: :func:`describe_shard` of ``edited_video``, the
    method's reconstruction quality (``crops_npz`` against ``recon_npz``, the shard's files; ``quality_psnr``,
    ``quality_ssim`` and ``quality_lpips`` when the pack ships LPIPS weights) and the seam columns of
    :func:`stitch.seam.seam_table` (``masks_npz``: the shard's masks; ``feather``: the paste setting)."""
    from stitch.packs import Pack
    from stitch.quality import shards_quality
    from stitch.seam import seam_table

    t0 = time.time()
    info = json.loads(Path(info_json).read_text())
    d = describe_shard(edited_video, info, shard, shard_frames, pack_dir, probe_path, device, detect_long_side)
    quality = shards_quality(crops_npz, recon_npz, Pack.open(pack_dir).lpips(device))
    start, stop = shard_range(shard, info["num_frames"], shard_frames)
    seam = seam_table(source_video, edited_video, masks_npz, quads_npz, feather, info, (start, stop))
    for k, v in quality.items():
        if len(v) != stop - start:
            raise StitchError(f"{recon_npz}: {len(v)} frames, shard {shard} has {stop - start}; rerun its stages")
        d[QUALITY + k] = v
    d.update({k: seam[k].to_numpy(np.float64) for k in SEAM})
    save_npz(out_npz, **d)
    log.info("%s shard %d: %d frames, face found on %d, %.2f s/frame", edited_video, shard, stop - start,
             int(d["found"].sum()), (time.time() - t0) / (stop - start))


def join(paths: Sequence, where) -> dict[str, np.ndarray]:
    """The describe shards ``paths`` (in frame order) joined along the frame axis; shards with different arrays
    (written by different versions or settings) are a one-line error naming ``where``."""
    parts = [dict(np.load(p)) for p in paths]
    if not parts:
        raise StitchError(f"{where}: no describe shards")
    keys = set(parts[0])
    for p, part in zip(paths, parts):
        if set(part) != keys:
            raise StitchError(f"{p}: arrays {sorted(part)} differ from {paths[0]}'s {sorted(keys)}; rerun {where}")
    return {k: np.concatenate([part[k] for part in parts]) for k in parts[0]}
