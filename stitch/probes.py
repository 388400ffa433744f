"""Attribute probes of the evaluation: :func:`probe_frames`, a per-frame table of a video's largest face.

The probe itself (:class:`AttributeProbe`, descriptors, :func:`smile_score`) lives in :mod:`stitch.attributes`, the
pipeline-level core the calibration stage uses too; it is re-exported here for the evaluation and the demo-pack
training (``stitch.zoo``).
"""

from __future__ import annotations

import numpy as np

from stitch.attributes import (  # noqa: F401  (re-exported)
    DEFAULT_PROBE,
    DESCRIPTOR_DIM,
    PROBE_FORMAT_VERSION,
    SMALL_FRAME_PX,
    AttributeProbe,
    attributes,
    auto_upsample,
    check_descriptors,
    face_descriptor,
    frame_descriptors,
    sigmoid,
    smile_or_nan,
    smile_score,
)

__all__ = ["DEFAULT_PROBE", "DESCRIPTOR_DIM", "PROBE_FORMAT_VERSION", "SMALL_FRAME_PX", "AttributeProbe", "attributes",
           "auto_upsample", "check_descriptors", "face_descriptor", "frame_descriptors", "probe_frames", "sigmoid",
           "smile_or_nan", "smile_score"]


def probe_frames(
    frames: np.ndarray, probe: AttributeProbe | None = None, landmarks: np.ndarray | None = None,
    progress: bool = True,
):
    """Per-frame attributes of the largest face: a DataFrame with one row per frame and columns
    ``frame, found, age, p_male, smile`` (NaN values where no face was found).

    ``probe`` defaults to the shipped :meth:`AttributeProbe.load`; ``landmarks`` (T, 68, 2) as in
    :func:`frame_descriptors`; ``smile`` is :func:`smile_score` of the frame's landmarks.
    """
    import pandas as pd

    probe = AttributeProbe.load() if probe is None else probe
    desc, found, lms = frame_descriptors(frames, landmarks, progress=progress)
    return pd.DataFrame({"frame": np.arange(len(found)), "found": found, **attributes(probe, desc, found, lms)})
