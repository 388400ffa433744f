"""The settings resolver (stitch.settings): samples.tsv > config.yaml > pack defaults > stitch.configs defaults,
for every stage setting, with the source of each value; and results/{video}/settings.yaml from the real workflow."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import yaml

from stitch.configs import STAGES, defaults, field_types
from stitch.errors import StitchError
from stitch.settings import check_pack_defaults, column, parse_sample_row, resolve, resolve_stage

REPO = Path(__file__).resolve().parents[1]
SCHEMA = yaml.safe_load((REPO / "workflow" / "schemas" / "config.schema.yaml").read_text())
ALL = [(s, k) for s in STAGES for k in defaults(s)]
CHOICES = {("masks", "method"): ["landmarks", "bisenet", "auto"], ("paste", "mode"): ["detail", "generator", "detail"],
           ("landmarks", "upsample"): [1, 2, 1], ("landmarks", "min_track_frac"): [0.5, 0.6, 0.7],
           ("calibrate", "gender_p"): [0.7, 0.8, 0.95], ("pti", "lr_schedule"): ["cosine", "constant", "cosine"],
           ("pti", "beta2"): [0.99, 0.995, 0.9], ("pti", "ema"): [0.9, 0.95, 0.99]}


def layer_value(stage: str, key: str, layer: int):
    """A valid value for ``layer`` (0 sample, 1 config, 2 pack) that differs from the default and the other layers
    where the type allows it."""
    if (stage, key) in CHOICES:
        return CHOICES[stage, key][layer]
    kind, default = field_types(stage)[key], defaults(stage)[key]
    if kind is bool:
        return not default if layer != 1 else default
    if kind is int:
        return default + 3 + layer
    return round(default * (2 + layer) + 0.125 * (layer + 1), 6)


def test_every_setting_is_in_the_schema_without_a_default():
    for stage, key in ALL:
        sub = SCHEMA["properties"][stage]["properties"][key]
        assert "default" not in sub, f"{stage}.{key}: a schema default would hide the pack's value"
        assert "null" in sub["type"], f"{stage}.{key}: config.yaml must be able to leave it to the fallback"
    assert {s: set(SCHEMA["properties"][s]["properties"]) for s in STAGES} == {s: set(defaults(s)) for s in STAGES}


@pytest.mark.parametrize("layer", ["sample", "config", "pack", "default"])
@pytest.mark.parametrize("stage,key", ALL)
def test_four_layers(stage, key, layer):
    depth = ["sample", "config", "pack", "default"].index(layer)
    sample = {column(stage, key): layer_value(stage, key, 0)} if depth <= 0 else {}
    config = {stage: {key: layer_value(stage, key, 1)}} if depth <= 1 else {stage: {key: None}}
    pack = {stage: {key: layer_value(stage, key, 2)}} if depth <= 2 else {}
    got = resolve_stage(stage, sample, config, pack, schema=SCHEMA)[key]
    want = layer_value(stage, key, depth) if depth < 3 else defaults(stage)[key]
    assert got.source == layer and got.value == want and type(got.value) is field_types(stage)[key]


def test_schedule_is_a_layer_between_config_and_pack():
    """schedule: fast sets its preset (stitch.configs.SCHEDULES) over the pack's defaults, under config and samples;
    the schedule itself comes from samples > config > the pack's defaults.schedule > reference."""
    from stitch.configs import SCHEDULES
    from stitch.settings import resolve_schedule

    pack = {"pti": {"epochs": 40, "lr": 3e-4, "keyframes": 5, "edit_reg_weight": 1.0}, "stitching": {"max_steps": 25}}
    ref = resolve({}, {}, pack, schema=SCHEMA)
    assert ref["pti"]["keyframes"].value == 5 and ref["pti"]["keyframes"].source == "pack"
    fast = resolve({}, {"schedule": "fast", "pti": {"batch": 2}}, pack, schema=SCHEMA)
    for stage, preset in SCHEDULES["fast"].items():
        for key, value in preset.items():
            want = ("config", 2) if (stage, key) == ("pti", "batch") else ("schedule", value)
            assert (fast[stage][key].source, fast[stage][key].value) == want, (stage, key)
    assert fast["pti"]["edit_reg_weight"].source == "pack"  # not in the preset: the pack's value stays
    assert resolve_schedule({"schedule": "reference"}, {"schedule": "fast"}, {}).source == "sample"
    assert resolve_schedule({}, {}, {"schedule": "fast"}) == resolve_schedule({}, {"schedule": None}, {"schedule": "fast"})
    assert resolve_schedule({}, {}, {"schedule": "fast"}).source == "pack"
    assert resolve_schedule({}, {}, {}).value == "reference"
    with pytest.raises(StitchError, match=r"^config/samples.tsv \(sample a\): schedule 'quick' is not one of "
                                          r"reference, fast; use one of them$"):
        resolve({"schedule": "quick"}, {}, {}, where={"sample": "config/samples.tsv (sample a)"})


def test_other_stages_and_keys_do_not_leak():
    res = resolve({"pti_epochs": 7}, {"stitching": {"lr": 0.5}}, {"pti": {"lr": 0.25}}, schema=SCHEMA)
    assert res["pti"]["epochs"].value == 7 and res["pti"]["lr"].source == "pack"
    assert res["stitching"]["lr"].value == 0.5 and res["stitching"]["max_steps"].source == "default"


def test_int_given_for_a_float_setting_becomes_float():
    assert resolve_stage("pti", {}, {"pti": {"lr": 1}}, {}, schema=SCHEMA)["lr"].value == 1.0


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_non_finite_numbers_are_refused_from_every_layer(bad):
    for sample, config, pack in [({"pti_lr": bad}, {}, {}), ({}, {"pti": {"lr": bad}}, {}), ({}, {}, {"pti": {"lr": bad}})]:
        with pytest.raises(StitchError, match="not a finite number"):
            resolve_stage("pti", sample, config, pack, where={"sample": "s.tsv", "config": "c", "pack": "p.yaml"},
                          schema=SCHEMA)


def test_out_of_range_value_names_the_source():
    with pytest.raises(StitchError, match=r"^resources/x/pack.yaml: stitching.max_steps = -1"):
        resolve_stage("stitching", {}, {}, {"stitching": {"max_steps": -1}}, where={"pack": "resources/x/pack.yaml"},
                      schema=SCHEMA)


def test_sample_cells_are_typed_and_bad_cells_name_file_and_column():
    row = parse_sample_row({"sample": "a", "path": "x.mp4", "pti_epochs": "12", "paste_feather": "false",
                            "stitching_lr": "", "masks_method": "landmarks"}, "s.tsv, sample 'a'", schema=SCHEMA)
    assert row == {"sample": "a", "path": "x.mp4", "pti_epochs": 12, "paste_feather": False, "stitching_lr": None,
                   "masks_method": "landmarks"}
    with pytest.raises(StitchError, match=r"^s.tsv, sample 'a': column 'pti_epochs' = 'ten' is not an integer"):
        parse_sample_row({"sample": "a", "path": "x", "pti_epochs": "ten"}, "s.tsv, sample 'a'", schema=SCHEMA)
    with pytest.raises(StitchError, match=r"unknown column 'pti_epoch'; known columns: sample, path"):
        parse_sample_row({"sample": "a", "path": "x", "pti_epoch": "3"}, "s.tsv", schema=SCHEMA)
    with pytest.raises(StitchError, match="masks.method = 'nope'"):
        parse_sample_row({"sample": "a", "path": "x", "masks_method": "nope"}, "s.tsv", schema=SCHEMA)


def test_pack_defaults_may_only_name_settings():
    check_pack_defaults({"pti": {"epochs": 3}}, "p.yaml", SCHEMA)
    with pytest.raises(StitchError, match=r"p.yaml: defaults.pti.epoch is not a setting of pti"):
        check_pack_defaults({"pti": {"epoch": 3}}, "p.yaml", SCHEMA)
    with pytest.raises(StitchError, match=r"defaults.zoo is not a stage"):
        check_pack_defaults({"zoo": {"steps": 3}}, "p.yaml", SCHEMA)


@pytest.mark.slow
def test_settings_yaml_from_the_workflow(tmp_path, shared_data):
    """samples.tsv columns, config.yaml and a pack that sets every setting, through the real workflow."""
    from wf import make_workdir, run_snakemake

    sample_cols = {column(s, k): layer_value(s, k, 0) for i, (s, k) in enumerate(ALL) if i % 3 == 0}
    config = {s: {k: (layer_value(s, k, 1) if i % 3 in (0, 1) else None) for i, (s2, k) in enumerate(ALL) if s2 == s}
              for s in STAGES}
    wd = make_workdir(tmp_path / "wd", tmp_path / "cache", shared_data, extra_config=config,
                      samples_extra={c: str(v).lower() if isinstance(v, bool) else v for c, v in sample_cols.items()})
    meta_path = wd / "pack" / "pack.yaml"
    meta = yaml.safe_load(meta_path.read_text())
    meta["defaults"] = {s: {k: layer_value(s, k, 2) for k in defaults(s)} for s in STAGES}
    meta_path.write_text(yaml.safe_dump(meta, sort_keys=False))
    run_snakemake(wd, "results/clip/settings.yaml")
    doc = yaml.safe_load((wd / "results" / "clip" / "settings.yaml").read_text())
    for i, (stage, key) in enumerate(ALL):
        layer = i % 3
        assert doc[stage][key] == {"value": layer_value(stage, key, layer),
                                   "source": ["sample", "config", "pack"][layer]}, (stage, key)
    assert doc["pack"] == {"value": str(wd / "pack"), "source": "config"}
