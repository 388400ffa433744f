"""The ``fast`` schedule (issue #13): keyframe selection on synthetic landmark tracks, keyframe PTI whose cost does
not grow with the number of frames, warm-started stitching, and ``schedule: fast`` end to end on the test clip."""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml
from conftest import pivot_frames

from stitch.configs import SCHEDULES, PTIConfig, StitchingConfig
from stitch.keyframes import fill_gaps, lagging_frames, landmark_features, select_keyframes
from stitch.pti import pti_tune
from stitch.stitching import stitch_track


def synthetic_track(rng) -> tuple[np.ndarray, np.ndarray]:
    """100 frames of 68 landmarks: a neutral face (0-39), the head turned (40-69), the mouth open (70-99), each
    frame moved and scaled at random (the head moving in the frame). Returns (landmarks, segment of each frame)."""
    base = rng.normal(0, 1, (68, 2))
    turned = base * np.array([0.6, 1.0])  # a yaw squeezes the face horizontally
    open_mouth = base.copy()
    open_mouth[48:68, 1] += 1.5  # the mouth's points move down
    segment = np.repeat([0, 1, 2], [40, 30, 30])
    shapes = np.stack([base, turned, open_mouth])[segment] + rng.normal(0, 0.01, (100, 68, 2))
    scale = rng.uniform(20, 60, (100, 1, 1))
    shift = rng.uniform(0, 500, (100, 1, 2))
    return shapes * scale + shift, segment


def test_keyframes_cover_every_pose_and_expression():
    lm, segment = synthetic_track(np.random.default_rng(0))
    keys = select_keyframes(landmark_features(lm), 3)
    assert sorted(segment[keys]) == [0, 1, 2], keys
    assert len(select_keyframes(landmark_features(lm), 12)) == 12
    np.testing.assert_array_equal(select_keyframes(landmark_features(lm[:5]), 12), np.arange(5))  # short track
    np.testing.assert_array_equal(select_keyframes(landmark_features(lm), 0), np.arange(100))  # 0 = every frame


def test_keyframe_count_follows_the_variety_of_poses_not_the_length():
    """With a radius, keyframes are added until every frame is that close to one: a track with more distinct poses
    gets more, the same track played 3 times gets as many as once, and ``spacing`` bounds the count by the length."""
    rng = np.random.default_rng(5)
    lm, _ = synthetic_track(rng)
    varied = lm + rng.normal(0, 8.0, lm.shape) * np.linspace(0, 1, len(lm))[:, None, None]  # expressions vary more
    f, f_varied = landmark_features(lm, time_weight=0.0), landmark_features(varied, time_weight=0.0)
    d = np.sqrt(((f[:, None] - f[None]) ** 2).sum(-1))
    radius = 0.5  # within a pose ~0.13-0.17 apart, two poses >= 2
    keys = select_keyframes(f, 3, radius)
    assert len(keys) == 3  # three poses, each within the radius of its keyframe
    assert d[:, keys].min(axis=1).max() <= radius
    more = select_keyframes(f_varied, 3, radius)
    assert len(more) > 3 and np.sqrt(((f_varied[:, None] - f_varied[more][None]) ** 2).sum(-1)).min(1).max() <= radius
    assert len(select_keyframes(np.concatenate([f_varied] * 3), 3, radius)) == len(more)  # looped: same count
    assert len(select_keyframes(f_varied, 3, radius, spacing=25)) == 4  # at most 100 // 25 = 4
    assert len(select_keyframes(f_varied, 3, 0.0, spacing=25)) == 3  # no radius: k keyframes, as before


def test_head_motion_alone_is_not_a_new_pose():
    lm, _ = synthetic_track(np.random.default_rng(1))
    f = landmark_features(lm, time_weight=0.0)
    same = [np.abs(f[i] - f[0]).max() for i in range(1, 40)]  # one pose, moved and scaled
    other = np.abs(f[50] - f[0]).max()
    assert max(same) < 0.1 * other


def test_gaps_take_the_nearest_detection():
    lm = np.arange(5 * 68 * 2, dtype=np.float64).reshape(5, 68, 2)
    lm[[1, 3, 4]] = np.nan
    np.testing.assert_array_equal(fill_gaps(lm)[[1, 3, 4]], lm[[0, 2, 2]])
    # against the nearest-frame definition written out (a (T, T) table), ties to the earlier frame, random gaps
    rng = np.random.default_rng(0)
    for n in (1, 2, 7, 60):
        lm = rng.normal(size=(n, 68, 2))
        lm[rng.random(n) < 0.6] = np.nan
        lm[rng.integers(n)] = 0.0  # at least one frame with landmarks
        ok = np.flatnonzero(np.isfinite(lm).all(axis=(1, 2)))
        nearest = ok[np.abs(np.arange(n)[:, None] - ok[None]).argmin(axis=1)]
        np.testing.assert_array_equal(fill_gaps(lm), lm[nearest])


def test_lagging_frames_are_behind_and_spread():
    lm, segment = synthetic_track(np.random.default_rng(2))
    features = landmark_features(lm)
    keys = np.flatnonzero(segment < 2)[::10]  # no keyframe with the mouth open
    psnr = np.where(segment == 2, 25.0, 31.0)
    psnr[keys] = 32.0
    added = lagging_frames(psnr, keys, features, 4, margin_db=1.0)
    assert len(added) == 4 and set(segment[added]) == {2} and not set(added) & set(keys)
    assert np.ptp(added) > 10  # spread over the lagging stretch, not four neighbours
    assert len(lagging_frames(np.full(100, 31.0), keys, features, 4, 1.0)) == 0  # nothing behind


@pytest.mark.parametrize("n", [8, 32])
def test_keyframe_pti_steps_are_bounded(G, n):
    """Keyframe PTI tunes as many steps on 32 frames as on 8 (plus renders of every frame) and reports the
    reconstruction of every frame, not only the keyframes'."""
    ws, crops = pivot_frames(G, n)
    lm, _ = synthetic_track(np.random.default_rng(3))
    cfg = PTIConfig(epochs=4, lr=1e-3, keyframes=4, batch=2, lr_schedule="cosine", refine_frames=2,
                    refine_margin_db=0.0)
    _, st = pti_tune(G, ws, crops, cfg, progress=False, features=landmark_features(lm[:n]))
    added = len(st["refined"])
    assert len(st["keyframes"]) == 4 + added and added <= 2
    assert st["work"]["generator_steps"] == 4 * 4 + 2 * added  # 2 epochs on 4 keys, 2 on 4 + added
    # renders: the untuned generator on the first 4 keyframes, every frame at the check and after
    assert len(st["psnr_after_per_frame"]) == n and st["work"]["generator_forwards"] == 4 + 2 * n


@pytest.mark.parametrize("cap, batch", [(4.0, 1), (7.0, 2), (0.5, 1)], ids=["4 per frame", "7, batch 2", "below one epoch"])
def test_pti_steps_stay_within_the_per_frame_cap(G, cap, batch):
    """``max_steps_per_frame`` takes epochs off until the most steps the run could take (every refine frame added,
    the regulariser's extra image) fit: the steps really taken stay within cap x frames, and one more epoch would
    not fit. At least one epoch runs."""
    import torch

    from stitch.pti import edit_space
    from stitch.pti_budget import planned_epochs

    n = 10
    ws, crops = pivot_frames(G, n)
    lm, _ = synthetic_track(np.random.default_rng(3))
    space = edit_space({"age": torch.randn(G.num_ws, G.w_dim, generator=torch.Generator().manual_seed(0)) * 0.1})
    cfg = PTIConfig(epochs=12, lr=1e-3, keyframes=4, batch=batch, refine_frames=2, refine_margin_db=0.0,
                    edit_reg_weight=1.0, edit_reg_every=2, max_steps_per_frame=cap)
    _, st = pti_tune(G, ws, crops, cfg, progress=False, features=landmark_features(lm[:n]), space=space)
    assert 1 <= st["epochs"] < 12
    if cap * n < 4 + 2 + batch:  # less than one epoch's steps: one epoch runs
        assert st["epochs"] == 1
    else:
        assert st["steps"] <= cap * n
        one_more = PTIConfig(**{**cfg.__dict__, "max_steps_per_frame": 0.0, "epochs": st["epochs"] + 1})
        _, more = pti_tune(G, ws, crops, one_more, progress=False, features=landmark_features(lm[:n]), space=space)
        assert more["steps"] > cap * n  # the largest number of epochs that fits
    assert planned_epochs(PTIConfig(epochs=12, max_steps_per_frame=0.0), n, 4, regularise=True) == 12  # no cap


def test_the_step_budget_is_planned_again_with_the_frames_really_added():
    """talk_1's numbers under the fast preset as it was (49 epochs, at most 14 steps per frame): 135 frames, 32
    keyframes. Counting all 8 refine frames the plan is 46 epochs (refine after 23); with the 4 talk_1 really adds,
    49 fit again, with 8 not."""
    from stitch.pti_budget import planned_epochs

    cfg = PTIConfig(**{**SCHEDULES["fast"]["pti"], "epochs": 49, "max_steps_per_frame": 14.0})
    assert (cfg.refine_frames, cfg.edit_reg_every) == (8, 8)
    assert planned_epochs(cfg, 135, 32, regularise=True) == 46
    done = {"epoch": 23, "steps": 23 * 32 + 92, "updates": 23 * 32}  # 92 regularised updates among the first 736
    assert planned_epochs(cfg, 135, 32 + 4, True, refined=True, **done) == 49  # 1,881 steps <= 1,890
    assert planned_epochs(cfg, 135, 32 + 8, True, refined=True, **done) == 46  # 1,863; 47 epochs would be 1,908
    assert planned_epochs(cfg, 135, 32, regularise=False) == 49  # without the regulariser 49 x 32 + 25 x 8 fit
    # the preset now (58 epochs, at most 16 per frame): counting all 8 refine frames talk_1's plan is 53 epochs
    assert planned_epochs(PTIConfig(**SCHEDULES["fast"]["pti"]), 135, 32, regularise=True) == 53


def test_reference_pti_is_unchanged_by_the_keyframe_code(G):
    """keyframes 0, batch 1, constant lr: every frame once per epoch, one step each (STIT)."""
    ws, crops = pivot_frames(G, 5)
    _, st = pti_tune(G, ws, crops, PTIConfig(epochs=3, lr=1e-3), progress=False)
    assert st["keyframes"] == list(range(5)) and st["refined"] == [] and st["steps"] == 15


def test_warm_start_needs_fewer_steps_on_similar_frames(G):
    r = G.img_resolution
    ws, _ = pivot_frames(G, 1, seed=4)
    w = np.repeat(ws, 6, axis=0) + np.random.default_rng(0).normal(0, 0.01, (6,) + ws.shape[1:]).astype(np.float32)
    crops = np.full((6, r, r, 3), 128, np.uint8)
    border = np.zeros((6, r, r), np.float32)
    border[:, :4] = 1
    content = 1 - border
    cold = StitchingConfig(max_steps=30, lr=3e-3, border_threshold=0.02)
    warm = StitchingConfig(max_steps=30, lr=3e-3, border_threshold=0.02, warm_start=True)
    _, st_cold = stitch_track(G, w, crops, border, content, cold, progress=False)
    _, st_warm = stitch_track(G, w, crops, border, content, warm, progress=False)
    cold_steps, warm_steps = (sum(s["steps"] for s in st) for st in (st_cold, st_warm))
    assert st_cold[0]["steps"] == st_warm[0]["steps"] > 0  # the first frame starts from PTI's weights either way
    assert warm_steps < 0.5 * cold_steps, (warm_steps, cold_steps)


def test_stitching_in_place_over_some_frames_equals_a_new_array(G):
    """The stage stitches a shard's tuned frames into its crops array in place (a 1024 px shard is not held twice):
    same crops and stats as stitching those frames into a new array; the frames not tuned keep the source crop."""
    r = G.img_resolution
    ws, _ = pivot_frames(G, 1, seed=5)
    rng = np.random.default_rng(1)
    w = np.repeat(ws, 6, axis=0) + rng.normal(0, 0.02, (6,) + ws.shape[1:]).astype(np.float32)
    crops = rng.integers(0, 256, (6, r, r, 3), dtype=np.uint8)
    border = np.zeros((6, r, r), np.uint8)
    border[:, :4] = 255
    content = 255 - border
    cfg = StitchingConfig(max_steps=3, lr=3e-3, border_threshold=0.0, warm_start=True)
    tuned = np.array([1, 3, 4])
    fresh, st_fresh = stitch_track(G, w[tuned], crops[tuned], border[tuned], content[tuned], cfg, progress=False)
    inplace = crops.copy()
    _, st_inplace = stitch_track(G, w, inplace, border, content, cfg, progress=False, frames=tuned, out=inplace)
    np.testing.assert_array_equal(inplace[tuned], fresh)
    np.testing.assert_array_equal(np.delete(inplace, tuned, axis=0), np.delete(crops, tuned, axis=0))
    assert not np.array_equal(fresh, crops[tuned])
    assert st_inplace == st_fresh


@pytest.mark.slow
def test_fast_schedule_end_to_end(tmp_path, shared_data):
    from wf import make_workdir, run_snakemake

    wd = make_workdir(tmp_path / "wd", tmp_path / "cache", shared_data,
                      extra_config={"schedule": "fast", "pti": {"epochs": 4, "keyframes": 6}})
    run_snakemake(wd)
    settings = yaml.safe_load((wd / "results" / "clip" / "settings.yaml").read_text())
    assert settings["schedule"] == {"value": "fast", "source": "config"}
    assert settings["pti"]["keyframes"] == {"value": 6, "source": "config"}
    assert settings["pti"]["batch"] == {"value": SCHEDULES["fast"]["pti"]["batch"], "source": "schedule"}
    assert settings["stitching"]["max_steps"] == {"value": SCHEDULES["fast"]["stitching"]["max_steps"], "source": "schedule"}
    assert settings["stitching"]["warm_start"]["value"] is False
    stats = json.loads((wd / "results" / "clip" / "pti" / "stats.json").read_text())["faces"]["face0"]
    assert 6 <= len(stats["keyframes"]) < stats["frames"] and len(stats["psnr_after_per_frame"]) == stats["frames"]
    assert (wd / "results" / "clip" / "encode" / "stit" / "older.mp4").stat().st_size > 0
