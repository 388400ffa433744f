"""Edit targets in probe units (stitch.targets) and their per-video calibration (stitch.calibrate, rule calibrate).

The search runs on synthetic monotone responses (reaches the target in few evaluations; unreachable targets give
the best factor, the flag and one warning line); the end-to-end run calibrates target edits on the tiny workflow
(tests/wf.py) and checks the edit stage applies the calibrated factors. Invalid targets are refused at parse time
in tests/test_bad_inputs.py (PARSE_CASES "... target ...").
"""

from __future__ import annotations

import json
import logging
import math

import numpy as np
import pytest

from stitch.calibrate import calibrate_edit, search_factor
from stitch.configs import CalibrateConfig
from stitch.targets import final_factors, report_columns, split_targets


class Counted:
    """A response f -> (reading, identity distance) that counts its calls."""

    def __init__(self, reading, id_per_factor=0.03):
        self.reading, self.id_per_factor, self.calls = reading, id_per_factor, []

    def __call__(self, f):
        self.calls.append(f)
        return self.reading(f), self.id_per_factor * abs(f)


@pytest.mark.parametrize("reading, target", [
    (lambda f: 1.3 * f + 0.02 * f * f, 15.0),  # convex, increasing: age +15 y
    (lambda f: 1.1 * f, -10.0),  # younger
    (lambda f: -1.6 * f, 15.0),  # the direction lowers the reading: the search takes the other sign
    (lambda f: 0.2 + 0.7 * math.tanh(f / 5), 0.9),  # P(male) saturating toward 0.9
], ids=["older", "younger", "flipped direction", "gender"])
def test_search_reaches_a_target_in_few_evaluations(reading, target):
    response = Counted(reading)
    tol = 0.05 if target < 1 else 1.0
    res = search_factor(response, target, tol, start=8.0, max_factor=12.0, max_id_dist=0.6, max_evals=8)
    assert res.reached and res.limit is None
    assert abs(reading(res.factor) - target) <= tol and res.value == reading(res.factor)
    assert len(response.calls) <= 5 and len(set(response.calls)) == len(response.calls), response.calls
    assert len(res.evaluations) == len(response.calls)


def test_search_already_there_costs_one_evaluation():
    response = Counted(lambda f: 0.3 + 0.1 * f)
    res = search_factor(response, 0.3, 0.02, 3.0, 12.0, 0.6, 8)
    assert (res.factor, res.reached, response.calls) == (0.0, True, [0.0])


def test_unreachable_within_the_factor_limit_uses_the_limit():
    res = search_factor(Counted(lambda f: 0.5 * f, 0.01), 15.0, 1.0, 8.0, 12.0, 0.6, 8)
    assert (res.factor, res.value, res.reached, res.limit) == (12.0, 6.0, False, "factor")
    res = search_factor(Counted(lambda f: 0.5 * f, 0.01), -15.0, 1.0, 8.0, 12.0, 0.6, 8)
    assert (res.factor, res.reached, res.limit) == (-12.0, False, "factor")


def test_unreachable_within_the_identity_limit_uses_the_largest_safe_factor():
    # the target needs factor 10, identity distance passes 0.6 at factor 6
    response = Counted(lambda f: 1.5 * f, 0.1)
    res = search_factor(response, 15.0, 1.0, 8.0, 12.0, 0.6, 8)
    assert not res.reached and res.limit == "identity"
    assert res.id_dist <= 0.6 and 5.0 < res.factor <= 6.0, res
    assert len(response.calls) == 8


def test_no_face_on_any_render():
    res = search_factor(lambda f: (math.nan, math.nan), 15.0, 1.0, 8.0, 12.0, 0.6, 8)
    assert (res.factor, res.reached, res.limit) == (0.0, False, "no face")


class FakeKeyframes:
    """Stands in for stitch.keyframe_edits.KeyframeEdits: age reads 30 + 0.5 * factor, smile 0.1 + 0.05 * factor."""

    def __init__(self):
        self.source = {"age": np.array([30.0, 32.0]), "p_male": np.array([0.2, 0.3]), "smile": np.array([0.1, 0.1])}
        self.seen = []

    def measure(self, factors):
        self.seen.append(dict(factors))
        a, s = factors.get("age", 0.0), factors.get("smile", 0.0)
        return {"age": self.source["age"] + 0.5 * a, "p_male": self.source["p_male"],
                "smile": self.source["smile"] + 0.05 * s, "id_dist": 0.01 * (abs(a) + abs(s))}


def test_unreachable_target_warns_in_one_line_and_flags(caplog):
    cfg = CalibrateConfig(max_factor=12.0)
    with caplog.at_level(logging.WARNING, logger="stitch.calibrate"):
        doc = calibrate_edit(FakeKeyframes(), {"gender": 2.0}, {"age_years": 15}, cfg, "older")
    lines = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert lines == ["older: target age +15 y not reachable within factor limit 12 (reached +6 y); using 12"]
    t = doc["targets"]["age_years"]
    assert (t["factor"], t["reached"], t["limit"], t["reached_value"]) == (12.0, False, "factor", 6.0)
    assert t["source_value"] == 31.0 and t["iterations"] == len(t["evaluations"]) <= cfg.max_evals
    assert doc["factors"] == {"gender": 2.0, "age": 12.0} and doc["calibrated_factors"] == {"age": 12.0}


def test_combined_targets_are_searched_one_after_another():
    kf = FakeKeyframes()
    doc = calibrate_edit(kf, {}, {"age_years": 3, "smile_score": 0.1}, CalibrateConfig(), "young_smile")
    assert doc["targets"]["age_years"]["reached"] and doc["targets"]["smile_score"]["reached"]
    assert abs(doc["factors"]["age"] - 6.0) <= 2 and abs(doc["factors"]["smile"] - 2.0) <= 0.4
    first_smile = next(i for i, f in enumerate(kf.seen) if f.get("smile"))
    assert all("smile" not in f or f["smile"] == 0 for f in kf.seen[:first_smile])  # age first, smile at 0
    assert all(f["age"] == doc["factors"]["age"] for f in kf.seen[first_smile:])  # then smile, age fixed


def test_targets_split_from_raw_factors_and_applied(tmp_path):
    raw, targets = split_targets({"age_years": 15, "gender": 6, "smile": 2})
    assert raw == {"gender": 6, "smile": 2} and targets == {"age_years": 15}
    assert split_targets({"gender": "female"}) == ({}, {"gender": "female"})
    path = tmp_path / "older.json"
    path.write_text(json.dumps({"calibrated_factors": {"age": 9.5}}))
    assert final_factors({"smile": 2}, path, 0.5) == {"smile": 2.0, "age": 4.75}
    assert final_factors({"smile": 2}) == {"smile": 2.0}


def test_report_columns_show_target_and_reached():
    calibration = {"calibrated_factors": {"age": 9.27, "gender": 7.0}, "reached": False,
                   "targets": {"age_years": {"target": 15, "reached_value": 14.2},
                               "gender": {"target": "male", "reached_value": 0.62}}}
    cols = report_columns(calibration, {"age_delta": 13.4, "p_male_edit": 0.7}, np.array([0.9, 0.8, 0.3, np.nan]))
    assert cols == {"target": "age +15 y; gender male", "target_factors": "age 9.27; gender 7",
                    "target_keyframes": "+14.2 y; P(male) 0.62",
                    "target_reached": "+13.4 y; male on 67% of frames (P(male) 0.70)", "target_met": False}


@pytest.mark.slow
def test_workflow_calibrates_target_edits(tmp_path, shared_data):
    """Tiny random pack: targets are calibrated per video, raw edits are not, the edit applies the factors found.
    Paste mode detail keeps the source's face under the random generator's change, so the probe finds it and the
    search runs (mode generator pastes noise: no face, the typical factor with a warning)."""
    from wf import make_workdir, run_snakemake

    edits = {"older": {"age_years": 15}, "to_male": {"gender": "male", "smile": 1.0}, "smile": {"smile": 2.0}}
    wd = make_workdir(tmp_path / "wd", tmp_path / "cache", shared_data, edits=edits,
                      extra_config={"sweeps": {"older": [0.5]}, "pti": {"epochs": 2}, "paste": {"mode": "detail"},
                                    "calibrate": {"keyframes": 3, "max_evals": 4}})
    targets = [f"results/clip/edit/{e}.json" for e in ("older", "older_x0p5", "to_male", "smile")]
    run_snakemake(wd, *targets)
    res = wd / "results" / "clip"
    assert sorted(p.name for p in (res / "calibrate").iterdir()) == ["older.json", "to_male.json"]
    for name, direction in (("older", "age"), ("to_male", "gender")):
        doc = json.loads((res / "calibrate" / f"{name}.json").read_text())
        assert list(doc["calibrated_factors"]) == [direction] and len(doc["keyframes"]) <= 3
        t = next(iter(doc["targets"].values()))
        assert 1 <= t["iterations"] <= 4 and abs(t["factor"]) <= 12 and isinstance(t["reached"], bool)
        assert t["evaluations"][0]["factor"] == 0.0  # the un-edited reading first (to_male: with smile 1)
        assert t["source_value"] is not None and len(doc["keyframes"]) == 3
        log = (res / "logs" / f"calibrate_{name}.log").read_text()
        assert t["reached"] or f"WARNING stitch.calibrate: {name}: target " in log, log
        applied = json.loads((res / "edit" / f"{name}.json").read_text())
        assert applied["calibrated"] and applied["factors"] == doc["factors"]
    older_doc = json.loads((res / "calibrate" / "older.json").read_text())
    first = older_doc["targets"]["age_years"]["evaluations"][0]
    assert first["value"] == 0.0 and first["id_dist"] == 0.0  # detail paste at factor 0: the source itself
    assert older_doc["targets"]["age_years"]["iterations"] >= 2  # so it searched
    older = older_doc["calibrated_factors"]["age"]
    assert json.loads((res / "edit" / "older_x0p5.json").read_text())["factors"] == {"age": older * 0.5}
    assert json.loads((res / "edit" / "to_male.json").read_text())["factors"]["smile"] == 1.0
    assert json.loads((res / "edit" / "smile.json").read_text())["factors"] == {"smile": 2.0}
