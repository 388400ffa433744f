"""Edits over a time range (stitch.edit_range): envelope maths, bound parsing, validation, the paste stage's
per-frame "active" mask, and end to end in the tiny workflow: frames outside the range are the source's bit for bit
before encoding, and a changed start reruns only that edit."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import yaml

from stitch.edit import apply_edit
from stitch.edit_range import (check_range, envelope, frame_envelope, frame_times, parse_range_column, parse_time,
                               range_seconds, split_edit)
from stitch.errors import StitchError
from stitch.paste import paste_video

FPS = 1350 / 61  # talk_1


# --------------------------------------------------------------------------------------------- envelope maths


def test_envelope_zero_outside_one_inside_smooth_ramps():
    t = np.linspace(0.0, 6.0, 6001)  # 1 ms steps
    e = envelope(t, 2.0, 4.0, 0.5)
    assert np.all(e[(t < 2.0) | (t > 4.0)] == 0.0)
    assert np.all(e[(t >= 2.5) & (t <= 3.5)] == 1.0)
    assert np.all((e >= 0) & (e <= 1))
    up, down = (t >= 2.0) & (t <= 2.5), (t >= 3.5) & (t <= 4.0)
    assert np.all(np.diff(e[up]) >= 0) and np.all(np.diff(e[down]) <= 0)
    assert e[np.argmin(abs(t - 2.25))] == pytest.approx(0.5) and e[np.argmin(abs(t - 3.75))] == pytest.approx(0.5)
    # raised cosine: continuous, and its slope vanishes where the ramps meet 0 and 1 (no kink)
    assert np.abs(np.diff(e)).max() < 0.5 * np.pi / 500 * 1.01  # max slope pi / (2 ramp) per 1 ms
    slope = np.diff(e) / np.diff(t)
    for at in (2.0, 2.5, 3.5, 4.0):
        assert abs(slope[np.argmin(abs(t[:-1] - at))]) < 0.05


def test_envelope_without_ramp_is_a_hard_switch_including_the_bounds():
    t = frame_times(40, 10.0)
    e = envelope(t, 1.0, 2.0, 0.0)
    np.testing.assert_array_equal(e, ((t >= 1.0) & (t <= 2.0)).astype(float))
    assert e[10] == 1.0 and e[20] == 1.0 and e[9] == 0.0 and e[21] == 0.0


def test_frame_envelope_frame_bounds_and_defaults():
    e = frame_envelope(check_range({"start": "frame:10", "end": "frame:40"}, "x"), 135, FPS, "x")
    np.testing.assert_array_equal(np.flatnonzero(e), np.arange(10, 41))
    assert np.all(e[10:41] == 1.0)
    np.testing.assert_array_equal(frame_envelope(None, 7, FPS, "x"), np.ones(7))
    only_end = frame_envelope(check_range({"end": 1.0}, "x"), 135, FPS, "x")  # start = the video's start
    np.testing.assert_array_equal(np.flatnonzero(only_end), np.flatnonzero(frame_times(135, FPS) <= 1.0))
    only_start = frame_envelope(check_range({"start": "frame:100"}, "x"), 135, FPS, "x")  # end = the video's end
    np.testing.assert_array_equal(np.flatnonzero(only_start), np.arange(100, 135))


def test_apply_edit_scales_the_direction_per_frame():
    rng = np.random.default_rng(0)
    pivots = rng.normal(size=(2, 5, 3, 4)).astype(np.float32)
    directions = {"age": torch.ones(3, 4)}
    w = np.array([0.0, 0.5, 1.0, 0.0, 0.25])
    out = apply_edit(pivots, directions, {"age": 8}, w)
    np.testing.assert_array_equal(out[:, [0, 3]], pivots[:, [0, 3]])
    np.testing.assert_allclose(out - pivots, np.broadcast_to(4.0 * w[None, :, None, None], out.shape), rtol=1e-6)


# --------------------------------------------------------------------------------------------- parsing


def test_parse_time_seconds_and_frames():
    assert parse_time(2, "x") == 2.0 and parse_time("0.5", "x") == 0.5
    assert parse_time("frame:12", "x") == "frame:12" and parse_time(" frame: 7", "x") == "frame:7"
    for bad in ("frame:", "frame:-1", "2s", -1, float("nan"), True):
        with pytest.raises(StitchError, match=r"^edits.older: start = .*give seconds \(a number >= 0\) or 'frame:N'$"):
            parse_time(bad, "edits.older: start")


def test_split_edit_keeps_factors_apart_from_the_range():
    assert split_edit("older", {"age": 8}) == ({"age": 8}, None)
    factors, rng = split_edit("older", {"age": 8, "smile": 1, "start": 2, "end": "frame:90", "ramp": 0.5})
    assert factors == {"age": 8, "smile": 1} and rng == {"start": 2.0, "end": "frame:90", "ramp": 0.5}
    with pytest.raises(StitchError, match=r"^edits.older: needs at least one direction"):
        split_edit("older", {"start": 1})


def test_parse_range_column():
    got = parse_range_column("older=2:4:0.5; smile=frame:10:frame:40:0;young=:frame:3", "s.tsv, sample 'a'")
    assert got == {"older": {"start": 2.0, "end": 4.0, "ramp": 0.5},
                   "smile": {"start": "frame:10", "end": "frame:40", "ramp": 0.0},
                   "young": {"start": None, "end": "frame:3", "ramp": 0.0}}
    for bad in ("older", "older=2", "=1:2", "older=1:2:3:4"):
        with pytest.raises(StitchError, match=r"^s.tsv, sample 'a': edit_range item .* is not <edit>=<start>:<end>"):
            parse_range_column(bad, "s.tsv, sample 'a'")


# --------------------------------------------------------------------------------------------- validation


@pytest.mark.parametrize("spec, message", [
    ({"start": 4, "end": 2}, r"^edits.older: end 2.0 is before start 4.0$"),
    ({"start": "frame:40", "end": "frame:10"}, r"^edits.older: end frame:10 is before start frame:40$"),
    ({"start": 1, "ramp": -0.5}, r"^edits.older: ramp = -0.5 must be a number of seconds >= 0$"),
    ({"ramp": "fast"}, r"^edits.older: ramp = 'fast' must be a number of seconds >= 0$"),
])
def test_range_errors_at_parse_time(spec, message):
    with pytest.raises(StitchError, match=message):
        check_range(spec, "edits.older")


@pytest.mark.parametrize("spec, message", [
    ({"start": 2, "end": 9}, r"^edit older on v.mp4: 9 s is outside the video \(0-6.100 s\)$"),
    ({"start": "frame:135"}, r"^edit older on v.mp4: frame:135 is outside the video \(frames 0-134\)$"),
    ({"start": 3.0, "end": "frame:10"}, r"^edit older on v.mp4: end frame:10 \(0.452 s\) is before start 3.0"),
    ({"start": 2, "end": 3, "ramp": 0.6}, r"^edit older on v.mp4: two ramps of 0.6 s do not fit in 2.000-3.000 s"),
])
def test_range_errors_on_the_video(spec, message):
    with pytest.raises(StitchError, match=message):
        range_seconds(check_range(spec, "edits.older"), 135, FPS, "edit older on v.mp4")


# --------------------------------------------------------------------------------------------- paste


def test_paste_leaves_inactive_frames_untouched():
    rng = np.random.default_rng(1)
    frames = [rng.integers(0, 256, (40, 48, 3), dtype=np.uint8) for _ in range(4)]
    crops = np.full((4, 16, 16, 3), 250, np.uint8)
    quads = np.tile(np.array([[10.0, 8], [10, 30], [34, 30], [34, 8]]), (4, 1, 1))
    active = np.array([False, True, False, True])
    out = list(paste_video(frames, crops, quads, None, np.ones(4, bool), 0, active=active))
    for t in range(4):
        assert (out[t] is frames[t]) == (not active[t])
        assert np.array_equal(out[t], frames[t]) == (not active[t])


# --------------------------------------------------------------------------------------------- workflow


@pytest.fixture(scope="module")
def ranged(tmp_path_factory, shared_data):
    """The tiny workflow with `older` on frames 8..20 (ramp 0.1 s) and `smile` everywhere, stage files kept."""
    from wf import make_workdir, run_snakemake

    cache = tmp_path_factory.mktemp("wf_cache")
    wd = make_workdir(tmp_path_factory.mktemp("ranged"), cache, shared_data,
                      edits={"older": {"age": 8, "start": "frame:8", "end": "frame:20", "ramp": 0.1},
                             "smile": {"smile": 3}})
    run_snakemake(wd, "--notemp", "results/clip/encode/stit/older.mp4", "results/clip/encode/stit/smile.mp4")
    return wd


@pytest.mark.slow
def test_frames_outside_the_range_are_the_source_bit_for_bit(ranged):
    import json

    from stitch.video import read_frames
    from wf import pasted_frames

    res = ranged / "results" / "clip"
    src = read_frames(ranged / "inputs" / "clip.mp4")
    env = np.asarray(json.loads((res / "edit" / "older.json").read_text())["envelope"])
    info = json.loads((res / "frames" / "info.json").read_text())
    expect = frame_envelope(check_range({"start": "frame:8", "end": "frame:20", "ramp": 0.1}, "x"),
                            info["num_frames"], info["fps_num"] / info["fps_den"], "x")
    np.testing.assert_array_equal(env, expect)
    assert env[8] == 0.0 and env[14] == 1.0 and np.flatnonzero(env).tolist() == list(range(9, 20))
    pasted = pasted_frames(ranged, "older")
    outside = env == 0
    np.testing.assert_array_equal(pasted[outside], src[outside])
    assert all((pasted[t] != src[t]).any() for t in np.flatnonzero(env == 1)), "inside the range the face is edited"
    pivots, edited = np.load(res / "invert" / "0000.npy"), np.load(res / "edit" / "older.npy")  # 1 shard
    np.testing.assert_array_equal(edited[:, outside], pivots[:, outside])
    smile = pasted_frames(ranged, "smile")  # no range: every frame with a face is pasted
    valid = np.load(res / "align" / "quads.npz")["valid"].any(axis=0)
    assert all((smile[t] != src[t]).any() for t in np.flatnonzero(valid))
    stitched = np.load(res / "stitching" / "older" / "0000.npz")
    assert len(json.loads(str(stitched["stats"]))["face0"]) == int((valid & ~outside).sum()), "only active frames tuned"


@pytest.mark.slow
def test_changing_start_reruns_only_that_edit(ranged, tmp_path):
    import shutil

    from test_workflow import planned_jobs

    wd = tmp_path / "wd"
    shutil.copytree(ranged, wd, symlinks=True)
    path = wd / "config" / "config.yaml"
    cfg = yaml.safe_load(path.read_text())
    cfg["edits"]["older"]["start"] = "frame:6"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    jobs = planned_jobs(wd, "results/clip/encode/stit/older.mp4", "results/clip/encode/stit/smile.mp4")
    assert sorted(r for r, _ in jobs) == ["edit", "encode", "paste", "stitching"], jobs
    assert all(wc.get("edit") == "older" for _, wc in jobs), jobs


@pytest.mark.slow
def test_bad_range_is_one_clear_line(tmp_path, shared_data):
    from wf import make_workdir, run_snakemake

    wd = make_workdir(tmp_path / "wd", tmp_path / "cache", shared_data,
                      edits={"older": {"age": 8, "start": 9.0}}, samples_extra={"edit_range": "older=1:0.5"})
    proc = run_snakemake(wd, "--dry-run", check=False)
    assert proc.returncode != 0
    assert "config/samples.tsv, sample 'clip': edit_range older: end 0.5 is before start 1.0" in proc.stdout + proc.stderr
    (wd / "config" / "samples.tsv").write_text("sample\tpath\nclip\tinputs/clip.mp4\n")
    proc = run_snakemake(wd, "results/clip/edit/older.npy", check=False)  # 9 s is past the 1.5 s clip
    assert proc.returncode != 0
    assert "stitch error: edit older on inputs/clip.mp4: 9 s is outside the video (0-1.491 s)" in proc.stderr
