"""Typed settings of every pipeline stage, with STIT's published defaults: the one place defaults are written.

Each dataclass is one stage's ``config.yaml`` section. :mod:`stitch.settings` resolves a video's value of every
field from samples.tsv > config.yaml > the pack's ``defaults`` > the default here, and records where it came from.
Importing this module is cheap (no torch): the workflow reads it when it parses the Snakefile.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any


@dataclass(frozen=True)
class LandmarksConfig:
    """Face detection and tracking (dlib HOG + 68 landmarks)."""

    upsample: int = 0  # dlib HOG up-sampling (0 = reference; 1-2 find smaller faces, slower)
    max_gap: int = 8  # frames: shorter detection gaps are interpolated, longer ones pass through unedited
    min_track_frac: float = 0.3  # drop tracks present on fewer frames (false detections)
    detect_long_side: int = 0  # px: detect on a copy scaled down to this long side, landmarks at full size (0 = off)


@dataclass(frozen=True)
class AlignConfig:
    """FFHQ alignment with STIT's temporal smoothing (Gaussian sigmas in frames)."""

    center_sigma: float = 1.0
    xy_sigma: float = 3.0


@dataclass(frozen=True)
class MasksConfig:
    method: str = "auto"  # auto (BiSeNet when the pack has it, else landmarks) | bisenet | landmarks


@dataclass(frozen=True)
class PTIConfig:
    """STIT defaults: 300 epochs (80 in its examples), Adam lr 3e-5, betas (0.9, 0.999), 10*MSE + 1*LPIPS."""

    epochs: int = 300
    lr: float = 3e-5
    mse_weight: float = 10.0
    lpips_weight: float = 1.0  # used only when the pack ships LPIPS weights
    seed: int = 0
    edit_reg_weight: float = 0.0  # edit-preserving regulariser (not in STIT: 0)
    edit_reg_every: int = 1  # the regulariser on every k-th update only, its weight times k
    keyframes: int = 0  # tune on this many keyframes (stitch.keyframes; 0 = every frame, STIT)
    keyframe_radius: float = 0.0  # > 0: more keyframes until every frame's pose is this close to one (features)
    keyframe_spacing: int = 0  # > 0: those added keyframes stop at one per this many frames of the track
    batch: int = 1  # frames per Adam step (STIT: 1)
    lr_schedule: str = "constant"  # constant (STIT) | cosine (per epoch, to 0 at the end)
    refine_frames: int = 0  # frames added half-way where the reconstruction falls behind the keyframes'
    refine_margin_db: float = 1.0  # "behind": PSNR more than this below the keyframes' median
    beta2: float = 0.999  # Adam's second-moment decay (STIT: 0.999)
    ema: float = 0.0  # > 0: the result is the running average of the weights, this decay per update (STIT: off)
    freeze_below: int = 0  # synthesis blocks below this resolution (px) keep the pack's weights (STIT: 0, all tuned)
    max_steps_per_frame: float = 0.0  # > 0: fewer epochs so the steps stay within this many per frame of the track

    @classmethod
    def from_settings(cls, settings: dict) -> "PTIConfig":
        """From a resolved ``pti`` settings dict (missing keys keep their defaults)."""
        return from_settings(cls, settings)


@dataclass(frozen=True)
class StitchingConfig:
    """STIT: up to 100 Adam steps (lr 3e-4) per frame, early stop once the border loss is below the threshold."""

    max_steps: int = 100
    lr: float = 3e-4
    border_threshold: float = 0.005  # STIT: 0.005 (0.002 for hard backgrounds)
    content_weight: float = 0.01
    warm_start: bool = False  # start each frame from the previous frame's tuned weights (STIT: from PTI's)

    @classmethod
    def from_settings(cls, settings: dict) -> "StitchingConfig":
        return from_settings(cls, settings)


@dataclass(frozen=True)
class PasteConfig:
    feather: bool = True  # feathered (eroded + blurred) alpha at the mask's edge, as STIT
    mode: str = "generator"  # generator: paste the generator's face (STIT) | detail: the edit's change on the source


@dataclass(frozen=True)
class CalibrateConfig:
    """Edit targets in probe units (stitch.targets) -> factors per video (stitch.calibrate; not in STIT)."""

    keyframes: int = 8  # frames spread over the main face track, rendered and probed per tried factor
    max_factor: float = 20.0  # |factor| limit of the search (the demo pack's typical factors: age 8, gender 6, smile 3)
    max_id_dist: float = 0.6  # dlib descriptor distance to the un-edited render (< 0.6 = same person), keyframe mean
    max_evals: int = 8  # probe evaluations per target, the un-edited one included
    age_tol: float = 1.0  # years: age_years reached when within this
    smile_tol: float = 0.02  # smile_score reached when within this
    gender_p: float = 0.9  # gender target: mean P(male) to reach (female: 1 - gender_p)
    gender_tol: float = 0.05  # gender reached when P(male) is within this of its target

    @classmethod
    def from_settings(cls, settings: dict) -> "CalibrateConfig":
        return from_settings(cls, settings)


#: schedule name -> {stage: {key: value}}: a layer of the settings resolver between config.yaml and the pack's
#: defaults (stitch.settings). ``reference`` is STIT's (nothing changed); ``fast`` tunes PTI on keyframes (constant
#: learning rate, running average of the weights, blocks below 16 px frozen, the edit regulariser on every 8th update,
#: at most 16 steps per frame of the video: a short clip gets fewer epochs) and caps each frame's stitching at 10
#: steps, each started from PTI's weights as STIT does: a warm start from the previous frame's carries the edit's
#: undoing from frame to frame (act_d12: 4x the steps, seam 1.4x, TG-ID -0.012); issue #13, values chosen with
#: pilots, README "Schedules".
SCHEDULES: dict[str, dict[str, dict[str, Any]]] = {
    "reference": {},
    "fast": {
        "pti": {"keyframes": 32, "batch": 1, "epochs": 58, "lr": 1.5e-3, "lr_schedule": "constant", "refine_frames": 8,
                "edit_reg_every": 8, "beta2": 0.99, "ema": 0.99, "freeze_below": 16, "keyframe_radius": 0.25,
                "keyframe_spacing": 4, "max_steps_per_frame": 16},
        "stitching": {"max_steps": 10},
    },
}


#: frames per shard (stitch.segments) when neither config.yaml nor samples.tsv sets ``shard_frames``
DEFAULT_SHARD_FRAMES = 200


#: stage name -> its settings dataclass (the config.yaml section of the same name)
STAGES: dict[str, type] = {
    "landmarks": LandmarksConfig,
    "align": AlignConfig,
    "masks": MasksConfig,
    "pti": PTIConfig,
    "stitching": StitchingConfig,
    "paste": PasteConfig,
    "calibrate": CalibrateConfig,
}


_TYPES = {"int": int, "float": float, "bool": bool, "str": str}


def _field_type(f) -> type:
    return _TYPES[f.type] if isinstance(f.type, str) else f.type


def field_types(stage: str) -> dict[str, type]:
    """{key: python type} of one stage's settings."""
    return {f.name: _field_type(f) for f in fields(STAGES[stage])}


def defaults(stage: str) -> dict[str, Any]:
    return {f.name: f.default for f in fields(STAGES[stage])}


def from_settings(cls, settings: dict):
    """A stage config from a settings dict, each value cast to the field's type (missing keys: defaults)."""
    return cls(**{f.name: _field_type(f)(settings[f.name]) for f in fields(cls) if settings.get(f.name) is not None})
