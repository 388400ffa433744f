"""Edit targets in the attribute probe's units, beside raw latent factors (torch-free: read at Snakefile parse time).

A config edit maps directions to raw factors (``older: {age: 8}``) and may instead give a target for a direction,
which rule ``calibrate`` (:mod:`stitch.calibrate`) turns into a factor per video:

===============  ==============  ========================================================================
target key       direction       value
===============  ==============  ========================================================================
``age_years``    ``age``         probe age change in years, edit − source (e.g. ``15``, ``-10``)
``gender``       ``gender``      ``male`` or ``female``: P(male) of the probe reaches ``calibrate.gender_p``
                                 (female: 1 − it); a number under ``gender`` stays a raw factor
``smile_score``  ``smile``       landmark smile score change, edit − source (e.g. ``0.15``)
===============  ==============  ========================================================================

Raw factors and targets mix in one edit (the raw ones stay fixed); several targets in one edit are searched one
after another, in the order the edit lists them, each with the factors found before it applied.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

GENDERS = ("male", "female")


@dataclass(frozen=True)
class Target:
    key: str  # the config key
    direction: str  # the pack direction it calibrates
    reading: str  # the probe reading it is measured in (stitch.attributes.attributes: age, p_male, smile)
    unit: str  # how a value prints
    relative: bool  # True: edit − source change; False: the edited reading itself (gender's P(male))


TARGETS: dict[str, Target] = {
    "age_years": Target("age_years", "age", "age", "y", True),
    "gender": Target("gender", "gender", "p_male", "", False),
    "smile_score": Target("smile_score", "smile", "smile", "", True),
}


def is_target(key: str, value) -> bool:
    """``key: value`` of an edit is a target (else a raw factor of direction ``key``)."""
    return key in TARGETS and (key != "gender" or isinstance(value, str))


def split_targets(factors: Mapping) -> tuple[dict, dict]:
    """An edit's {key: value} without its time range -> ({direction: raw factor}, {target key: value})."""
    raw = {k: v for k, v in factors.items() if not is_target(k, v)}
    return raw, {k: v for k, v in factors.items() if is_target(k, v)}


def target_error(key: str, value) -> str | None:
    """What is wrong with the value of target ``key`` (None: valid)."""
    if key == "gender":
        if not isinstance(value, str) or value in GENDERS:
            return None  # a number is a raw factor
        return f"= {value!r} is not a gender target; write gender: male or gender: female (or a number: a raw factor)"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return f"= {value!r} is not a number; write the {describe_key(key)} as a number, e.g. {key}: 15"
    if not math.isfinite(value):
        return f"= {value} is not a finite number; write a finite number"
    return None


def describe_key(key: str) -> str:
    return {"age_years": "age change in years", "smile_score": "smile score change"}.get(key, key)


def target_value(key: str, value, gender_p: float) -> float:
    """A target in the probe's reading: years / smile change, or P(male) for a gender."""
    if key == "gender":
        return float(gender_p if value == "male" else 1.0 - gender_p)
    return float(value)


def describe(key: str, value) -> str:
    """'age +15 y', 'gender male', 'smile +0.15'."""
    t = TARGETS[key]
    if key == "gender":
        return f"gender {value}"
    return f"{t.direction} {float(value):+g}{' ' + t.unit if t.unit else ''}"


def describe_reading(key: str, value: float) -> str:
    """A reached value in the target's units: '+9.8 y', 'P(male) 0.62', '+0.11'."""
    if value is None or not math.isfinite(value):
        return "no face measured"
    if key == "gender":
        return f"P(male) {value:.2f}"
    unit = TARGETS[key].unit
    return f"{value:+.3g}{' ' + unit if unit else ''}"


def final_factors(raw: Mapping[str, float], calibration_json=None, multiplier: float = 1.0) -> dict[str, float]:
    """The factors an edit applies: its raw ones plus, for an edit with targets, the calibrated factors of
    ``calibrate/{edit}.json`` (times ``multiplier`` for a strength sweep of that edit)."""
    out = {k: float(v) for k, v in raw.items()}
    if calibration_json is not None:
        doc = json.loads(Path(calibration_json).read_text())
        out.update({d: float(f) * float(multiplier) for d, f in doc["calibrated_factors"].items()})
    return out


def video_reading(key: str, value, summary: Mapping, p_male_edit=None) -> str:
    """What a finished video reached for one target, from its metrics summary (age_delta, smile_delta; for a gender
    the share of frames the probe reads as that gender, and the mean P(male))."""
    if key != "gender":
        reading = summary.get({"age_years": "age_delta", "smile_score": "smile_delta"}[key])
        return describe_reading(key, float("nan") if reading is None else float(reading))
    import numpy as np

    p = np.asarray([] if p_male_edit is None else p_male_edit, np.float64)
    p = p[np.isfinite(p)]
    share = float(np.mean(p > 0.5 if value == "male" else p < 0.5)) if p.size else float("nan")
    mean = summary.get("p_male_edit")
    return f"{value} on {share:.0%} of frames (P(male) {float('nan') if mean is None else mean:.2f})"


def report_columns(calibration: Mapping, summary: Mapping, p_male_edit=None) -> dict:
    """Target vs reached columns of an edit's metrics summary: ``target``, ``target_factors`` (calibrated),
    ``target_keyframes`` (the calibration's keyframe reading), ``target_reached`` (the finished video),
    ``target_met`` (the calibration reached every target within its limits)."""
    items = calibration["targets"]
    join = "; ".join
    return {
        "target": join(describe(k, t["target"]) for k, t in items.items()),
        "target_factors": join(f"{d} {f:.3g}" for d, f in calibration["calibrated_factors"].items()),
        "target_keyframes": join(describe_reading(k, t["reached_value"] if t["reached_value"] is not None
                                                  else float("nan")) for k, t in items.items()),
        "target_reached": join(video_reading(k, t["target"], summary, p_male_edit) for k, t in items.items()),
        "target_met": bool(calibration["reached"]),
    }
