"""Stage ``calibrate``: the factors that make an edit reach its targets in the attribute probe's units, per video.

An edit with targets (:mod:`stitch.targets`: ``age_years``, ``gender``, ``smile_score``) is calibrated on a handful of
keyframes spread over the main face track (track 0, the largest; ``calibrate.keyframes``): the PTI-tuned generator
renders the pivots moved by ``factor / 2 * direction`` (plus the edit's raw factors), the renders are pasted into
the source frames as the paste stage does (mask, feather, ``paste.mode``) and the pasted frames are probed as the
evaluation probes them (:mod:`stitch.attributes` on the whole frame: largest detected face). A target's reading is
the keyframe mean of edit − source (age years, smile score; what the metrics' ``*_delta`` measure) or of the edited
P(male) (gender). Identity distance: the keyframe mean of the dlib descriptor distance to the un-edited render.

:func:`search_factor` is a 1-D search on a monotone response: the un-edited reading, one step of the typical factor
toward the target (the other sign if the reading moved away), secant steps until the target is bracketed, then
regula falsi (kept inside the bracket) until the reading is within the tolerance; every tried factor is cached. It
never goes past ``max_factor`` nor uses a factor whose identity distance exceeds ``max_id_dist``. Several targets
in one edit are searched one after another (config order), each with the factors found before it. A target out
of reach: the closest feasible factor, one WARNING line in the log and ``reached: false`` in the JSON.
"""

from __future__ import annotations

import logging
import math
import time
import warnings
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field

import numpy as np

from stitch.errors import StitchError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Evaluation:
    factor: float
    value: float  # the reading in the target's units (NaN: no face measured)
    id_dist: float  # identity distance to the un-edited render (NaN: unknown)


@dataclass
class SearchResult:
    factor: float
    value: float
    id_dist: float
    reached: bool
    limit: str | None  # why not reached: "factor", "identity", "evaluations", "no face" (None when reached)
    evaluations: list[Evaluation] = field(default_factory=list)


def _next_magnitude(shorts: list[Evaluation], hi: Evaluation | None, target: float, want: float,
                    max_factor: float) -> float | None:
    """The next |factor| to try (None: nothing left to try). ``shorts``: feasible evaluations short of the target,
    by |factor|; ``hi``: the smallest |factor| past the target or infeasible."""
    a, lo = abs(shorts[-1].factor), shorts[-1]
    if hi is None:  # not bracketed yet: secant through the two largest short points, at least x1.25, at most x4
        if a >= max_factor:
            return None
        prev = shorts[-2] if len(shorts) > 1 else None
        slope = (lo.value - prev.value) / (a - abs(prev.factor)) if prev is not None and a > abs(prev.factor) else 0.0
        x = a + (target - lo.value) / slope if slope * want > 0 else 2 * a
        return float(min(np.clip(x, 1.25 * a, 4 * a), max_factor))
    b = abs(hi.factor)
    if b - a <= 1e-3 * max_factor:
        return None
    if math.isfinite(hi.value) and (hi.value - target) * want >= 0 and hi.value != lo.value:
        x = a + (target - lo.value) * (b - a) / (hi.value - lo.value)  # regula falsi, kept off the ends
        return float(np.clip(x, a + 0.1 * (b - a), b - 0.1 * (b - a)))
    return (a + b) / 2  # the identity limit lies between: bisect


def search_factor(measure: Callable[[float], tuple[float, float]], target: float, tol: float, start: float,
                  max_factor: float, max_id_dist: float, max_evals: int) -> SearchResult:
    """The factor whose reading ``measure(factor)[0]`` is within ``tol`` of ``target`` (see the module doc).

    ``measure(factor) -> (reading, identity distance)``; ``start``: the first |factor| tried (a typical factor).
    At most ``max_evals`` calls (factor 0 included); |factor| <= ``max_factor``; identity distance <= ``max_id_dist``.
    """
    cache: dict[float, Evaluation] = {}

    def ev(f: float) -> Evaluation:
        f = float(np.clip(f, -max_factor, max_factor))
        if f not in cache:
            value, dist = measure(f)
            cache[f] = Evaluation(f, float(value), float(dist))
        return cache[f]

    ok = lambda e: math.isfinite(e.value) and not e.id_dist > max_id_dist  # noqa: E731
    done = lambda e: ok(e) and abs(e.value - target) <= tol  # noqa: E731
    e0 = e = ev(0.0)
    if not done(e0) and math.isfinite(e0.value):
        want = 1.0 if target > e0.value else -1.0
        e = ev(want * min(abs(start), max_factor))  # guess: a positive factor raises the reading
        if math.isfinite(e.value) and (e.value - e0.value) * want < 0:
            e = ev(-e.factor)  # it lowers it: search the other sign
        sign = 1.0 if e.factor > 0 else -1.0
        shorts, hi = [e0], None
        while not done(e) and len(cache) < max_evals:
            if ok(e) and (target - e.value) * want > 0:
                shorts = sorted({*shorts, e}, key=lambda s: abs(s.factor))
            elif hi is None or abs(e.factor) < abs(hi.factor):
                hi = e
            x = _next_magnitude(shorts, hi, target, want, max_factor)
            if x is None:
                break
            e = ev(sign * x)
    return _result(list(cache.values()), target, tol, max_factor, max_id_dist, ok)


def _result(evals: list[Evaluation], target: float, tol: float, max_factor: float, max_id_dist: float,
            ok) -> SearchResult:
    feasible = [e for e in evals if ok(e)]
    if not feasible:
        return SearchResult(0.0, float("nan"), float("nan"), False, "no face", evals)
    best = min(feasible, key=lambda e: (abs(e.value - target), abs(e.factor)))
    reached = abs(best.value - target) <= tol
    limit = None
    if not reached:
        short_side = (target - best.value) * (target - evals[0].value) > 0
        if short_side and any(ok(e) and abs(e.factor) >= max_factor for e in evals):
            limit = "factor"
        elif short_side and any(e.id_dist > max_id_dist for e in evals):
            limit = "identity"
        else:
            limit = "evaluations"
    return SearchResult(best.factor, best.value, best.id_dist, reached, limit, evals)


def limit_text(result: SearchResult, cfg) -> str:
    return {"factor": f"factor limit {cfg.max_factor:g}",
            "identity": f"identity distance limit {cfg.max_id_dist:g} (at factor {result.factor:.3g}: "
                        f"{result.id_dist:.3g})",
            "evaluations": f"{cfg.max_evals} probe evaluations"}[result.limit]


def nanmean(x) -> float:
    """Mean of the finite entries, NaN when there are none (no warning)."""
    x = np.asarray(x, np.float64)
    x = x[np.isfinite(x)]
    return float(x.mean()) if x.size else float("nan")


def reading(measured: Mapping, source: Mapping, key: str) -> float:
    """A target's keyframe reading: mean edit − source change, or the mean edited P(male) for a gender."""
    from stitch.targets import TARGETS

    t = TARGETS[key]
    edited = np.asarray(measured[t.reading], np.float64)
    return nanmean(edited - np.asarray(source[t.reading], np.float64) if t.relative else edited)


def tolerance(key: str, cfg) -> float:
    return {"age_years": cfg.age_tol, "smile_score": cfg.smile_tol, "gender": cfg.gender_tol}[key]


def calibrate_edit(keyframes, raw: Mapping[str, float], targets: Mapping, cfg, name: str) -> dict:
    """Search each target of one edit in turn (:func:`search_factor`) on ``keyframes`` (:class:`stitch.keyframe_edits.
    KeyframeEdits`); returns {"factors": every factor, "calibrated_factors", "targets": per target facts}."""
    from stitch.edit import TYPICAL_FACTOR
    from stitch.targets import TARGETS, describe, describe_reading, target_value

    factors, out = {d: float(f) for d, f in raw.items()}, {}
    for key, value in targets.items():
        t0, direction = time.time(), TARGETS[key].direction
        goal = target_value(key, value, cfg.gender_p)

        def measure(f: float) -> tuple[float, float]:
            m = keyframes.measure({**factors, direction: f})
            return reading(m, keyframes.source, key), m["id_dist"]

        typical = TYPICAL_FACTOR.get(direction, cfg.max_factor / 2)
        res = search_factor(measure, goal, tolerance(key, cfg), typical, cfg.max_factor, cfg.max_id_dist,
                            cfg.max_evals)
        if res.limit == "no face":  # nothing measured: the typical factor toward the target (gender: + = male)
            res.factor = math.copysign(min(typical, cfg.max_factor), -1.0 if value in ("female",) or (
                not isinstance(value, str) and value < 0) else 1.0)
        factors[direction] = res.factor
        out[key] = {"target": value, "direction": direction, "goal": goal, "tolerance": tolerance(key, cfg),
                    "factor": res.factor, "reached_value": res.value, "id_dist": res.id_dist, "reached": res.reached,
                    "limit": res.limit, "source_value": nanmean(keyframes.source[TARGETS[key].reading]),
                    "iterations": len(res.evaluations), "evaluations": [asdict(e) for e in res.evaluations],
                    "seconds": round(time.time() - t0, 3)}
        if res.limit == "no face":
            log.warning("%s: target %s not measurable (the attribute probe finds no face on the edited keyframes); "
                        "using the typical factor %.3g", name, describe(key, value), res.factor)
        elif not res.reached:
            log.warning("%s: target %s not reachable within %s (reached %s); using %.3g", name, describe(key, value),
                        limit_text(res, cfg), describe_reading(key, res.value), res.factor)
        else:
            log.info("%s: target %s reached %s with %s factor %.3g (%d evaluations)", name, describe(key, value),
                     describe_reading(key, res.value), direction, res.factor, len(res.evaluations))
    calibrated = {TARGETS[k].direction: factors[TARGETS[k].direction] for k in targets}
    return {"factors": factors, "calibrated_factors": calibrated, "targets": out}


def json_safe(value):
    """NaN / inf -> None (strict JSON), numpy scalars -> Python, recursively."""
    if isinstance(value, Mapping):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    return value.item() if isinstance(value, np.generic) else value


def run(video, quads_npz, masks_npz, pivots_npy, generators, pack_dir, probe_path, raw: dict, targets: dict,
        settings: dict, out_json, name: str = "edit", feather: bool = True, mode: str = "generator",
        device="cpu") -> dict:
    """Stage ``calibrate`` for one video and edit with targets: ``calibrate/{edit}.json``."""
    from stitch.atomic import write_json
    from stitch.attributes import AttributeProbe
    from stitch.configs import CalibrateConfig
    from stitch.keyframe_edits import KeyframeEdits, load_keyframes
    from stitch.models.native import load_bundle
    from stitch.packs import Pack

    if not targets:
        raise StitchError(f"edit {name} has no targets: rule calibrate has nothing to calibrate")
    t0 = time.time()
    cfg = CalibrateConfig.from_settings(settings)
    data = load_keyframes(video, quads_npz, masks_npz, pivots_npy, cfg.keyframes)
    pack = Pack.open(pack_dir)
    G = load_bundle(generators, device)["face0"]
    kf = KeyframeEdits(data, G, pack.directions, AttributeProbe.load(probe_path), feather, mode, device)
    t_load = time.time() - t0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        doc = calibrate_edit(kf, raw, targets, cfg, name)
    final = kf.measure(doc["factors"])
    doc.update(video=str(video), edit=name, keyframes=[int(k) for k in kf.keys], raw_factors=dict(raw),
               order=list(targets), reached=all(t["reached"] for t in doc["targets"].values()),
               id_dist=final["id_dist"], settings=asdict(cfg), renders=kf.renders,
               seconds={"load": round(t_load, 3), "total": round(time.time() - t0, 3)})
    write_json(out_json, json_safe(doc), newline=True)
    log.info("%s: factors %s on %d keyframes (%d renders, %.1f s)", name, doc["factors"], len(kf.keys), kf.renders,
             doc["seconds"]["total"])
    return doc
