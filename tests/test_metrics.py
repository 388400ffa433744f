"""The evaluation maths on constructed data: TL-ID / TG-ID, PSNR, SSIM, per-frame crop quality."""

from __future__ import annotations

import math

import numpy as np
import pytest

from stitch.metrics import adjacent_cosine, identity_consistency, unit_rows
from stitch.quality import crop_quality, gaussian_window, psnr, ssim

T, D = 40, 128


def smooth_sequence(rng, T=T, D=D, step=0.05):
    """A face identity drifting slowly over time (a random walk around a fixed identity)."""
    base = rng.normal(size=D)
    walk = np.cumsum(rng.normal(scale=step, size=(T, D)), axis=0)
    return base + walk


def random_rotation(rng, D=D):
    q, r = np.linalg.qr(rng.normal(size=(D, D)))
    return q * np.sign(np.diag(r))


def test_identical_frames_score_one():
    rng = np.random.default_rng(0)
    same = np.tile(rng.normal(size=D), (T, 1))
    other = np.tile(rng.normal(size=D), (T, 1)) * 3.0  # a different (constant) person, not normalised
    r = identity_consistency(same, other)
    assert r["tl_id"] == pytest.approx(1.0, abs=1e-12) and r["tg_id"] == pytest.approx(1.0, abs=1e-12)
    src = smooth_sequence(rng)
    r = identity_consistency(src, src.copy())  # the edit reproduces the source exactly
    assert r["tl_id"] == pytest.approx(1.0, abs=1e-12) and r["tg_id"] == pytest.approx(1.0, abs=1e-12)
    assert r["frames_used"] == T and r["adjacent_pairs"] == T - 1


def test_jitter_scores_lower_than_smooth():
    rng = np.random.default_rng(1)
    src = smooth_sequence(rng)
    smooth_edit = src + 0.8 * rng.normal(size=D)  # the same constant change on every frame
    jittered_edit = smooth_edit + rng.normal(scale=0.4, size=(T, D))  # plus per-frame flicker
    smooth, jittered = identity_consistency(src, smooth_edit), identity_consistency(src, jittered_edit)
    assert jittered["tl_id"] < smooth["tl_id"] - 0.01
    assert jittered["tg_id"] < smooth["tg_id"]
    assert jittered["tl_id"] < 0.99
    assert smooth["tl_id"] == pytest.approx(1.0, abs=0.01)


def test_ratio_cancels_the_sources_own_variation():
    rng = np.random.default_rng(2)
    src = smooth_sequence(rng, step=0.5)  # a source with a lot of its own frame-to-frame variation
    raw = identity_consistency(src, src)
    assert raw["src_adjacent"] < 0.97 and raw["src_global"] < 0.8  # far from 1 on its own
    edit = src @ random_rotation(rng) * 2.0  # a different embedding with exactly the same per-frame variation
    r = identity_consistency(src, edit)
    assert r["edit_adjacent"] == pytest.approx(raw["src_adjacent"], abs=1e-9)
    assert r["tl_id"] == pytest.approx(1.0, abs=1e-9) and r["tg_id"] == pytest.approx(1.0, abs=1e-9)


def test_frames_missing_in_either_video_are_dropped():
    rng = np.random.default_rng(3)
    src = smooth_sequence(rng)
    edit = src + rng.normal(scale=0.3, size=(T, D))
    ref = identity_consistency(src, edit)
    src_m, edit_m = src.copy(), edit.copy()
    src_m[9] = np.nan  # no face in the source frame 9
    edit_m[5] = np.nan  # no face in the edited frame 5
    edit_m[20] = 0.0  # an all-zero descriptor counts as missing too
    r = identity_consistency(src_m, edit_m)
    assert r["frames_used"] == T - 3
    assert r["adjacent_pairs"] == T - 1 - 6  # pairs (4,5) (5,6) (8,9) (9,10) (19,20) (20,21) are gone
    keep = np.setdiff1d(np.arange(T), [5, 9, 20])
    U_s, U_e = unit_rows(src[keep]), unit_rows(edit[keep])
    R = (U_e @ U_e.T) / (U_s @ U_s.T)
    pairs = [(i, i + 1) for i in range(len(keep) - 1) if keep[i + 1] - keep[i] == 1]
    assert r["tl_id"] == pytest.approx(np.mean([R[i, j] for i, j in pairs]), abs=1e-12)
    assert r["tg_id"] == pytest.approx(R[~np.eye(len(keep), dtype=bool)].mean(), abs=1e-12)
    assert r["tl_id"] != pytest.approx(ref["tl_id"], abs=1e-9)  # the dropped frames did change the mean
    # garbage in a frame where the other video has no face must not matter
    edit_m[9] = 1e3 * rng.normal(size=D)
    assert identity_consistency(src_m, edit_m)["tl_id"] == pytest.approx(r["tl_id"], abs=1e-12)
    # fewer than two frames in common: undefined, not an error
    one = np.full((T, D), np.nan)
    one[3] = src[3]
    r = identity_consistency(src, one)
    assert r["frames_used"] == 1 and math.isnan(r["tl_id"]) and math.isnan(r["tg_id"])


def test_adjacent_cosine():
    E = np.array([[1.0, 0.0], [1.0, 1.0], [np.nan, np.nan], [0.0, 2.0], [0.0, 3.0]])
    c = adjacent_cosine(E)
    assert math.isnan(c[0]) and math.isnan(c[2]) and math.isnan(c[3])
    assert c[1] == pytest.approx(1 / math.sqrt(2)) and c[4] == pytest.approx(1.0)


def test_psnr_identical_and_known_noise():
    rng = np.random.default_rng(4)
    img = rng.integers(20, 236, size=(64, 64, 3), dtype=np.uint8)
    assert psnr(img, img) == math.inf
    checker = np.where((np.indices((64, 64)).sum(0) % 2)[..., None] == 0, 10, -10)
    noisy = (img.astype(int) + checker).astype(np.uint8)  # |error| = 10 everywhere -> MSE 100
    assert psnr(img, noisy) == pytest.approx(10 * math.log10(255 ** 2 / 100), abs=1e-9)  # 28.13 dB
    gauss = np.clip(img + rng.normal(scale=5.0, size=img.shape), 0, 255).round().astype(np.uint8)
    assert psnr(img, gauss) == pytest.approx(20 * math.log10(255 / 5.0), abs=0.15)  # 34.15 dB


def ssim_reference(a, b):
    """SSIM via scipy's gaussian_filter (radius 5 = 11 taps, σ 1.5), cropped to the valid part, per channel."""
    from scipy.ndimage import gaussian_filter

    a, b = a.astype(np.float64), b.astype(np.float64)
    f = lambda x: gaussian_filter(x, sigma=(1.5, 1.5, 0), truncate=5 / 1.5)[5:-5, 5:-5]  # noqa: E731
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    ma, mb = f(a), f(b)
    va, vb, cab = f(a * a) - ma ** 2, f(b * b) - mb ** 2, f(a * b) - ma * mb
    return ((2 * ma * mb + c1) * (2 * cab + c2) / ((ma ** 2 + mb ** 2 + c1) * (va + vb + c2))).mean()


def test_ssim():
    rng = np.random.default_rng(5)
    g = gaussian_window()
    assert len(g) == 11 and g.sum() == pytest.approx(1.0) and np.argmax(g) == 5
    img = rng.integers(0, 256, size=(48, 40, 3), dtype=np.uint8)
    assert ssim(img, img) == pytest.approx(1.0, abs=1e-12)
    noisy = np.clip(img + rng.normal(scale=25, size=img.shape), 0, 255).astype(np.uint8)
    worse = np.clip(img + rng.normal(scale=60, size=img.shape), 0, 255).astype(np.uint8)
    s1, s2 = ssim(img, noisy), ssim(img, worse)
    assert 0 < s2 < s1 < 1
    assert s1 == pytest.approx(ssim(noisy, img), abs=1e-12)  # symmetric
    assert s1 == pytest.approx(ssim_reference(img, noisy), abs=1e-9)
    gray = img[..., 0]
    assert ssim(gray, noisy[..., 0]) == pytest.approx(ssim_reference(img[..., :1], noisy[..., :1]), abs=1e-9)
    assert ssim(img[:8, :8], noisy[:8, :8]) < 1.0  # smaller than the window: still defined


def test_crop_quality_per_frame_over_valid_faces():
    rng = np.random.default_rng(6)
    crops = rng.integers(0, 256, size=(2, 4, 16, 16, 3), dtype=np.uint8)
    recon = crops.copy()
    recon[0, 1] = np.clip(crops[0, 1].astype(int) + 8, 0, 255)
    valid = np.array([[True, True, False, True], [False, True, False, True]])
    recon[1, 3] = 0  # face 1 on frame 3 is badly reconstructed
    q = crop_quality(crops, recon, valid)
    assert q["psnr"][0] == math.inf and q["ssim"][0] == pytest.approx(1.0)
    assert math.isnan(q["psnr"][2]) and math.isnan(q["ssim"][2])  # no valid face on frame 2
    assert q["psnr"][1] == math.inf  # one identical face makes the frame's mean inf
    assert q["ssim"][3] == pytest.approx((1.0 + ssim(crops[1, 3], recon[1, 3])) / 2)
    assert set(q) == {"psnr", "ssim"}  # no LPIPS column without an LPIPS net


# --------------------------------------------------------------------------------------------- the workflow


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory, shared_data):
    """The tiny clip through e4e + STIT with the embedded demo pack (faces a detector finds again), an edit plus a
    strength sweep, then metrics, figures, tables (default target) and the report."""
    import yaml

    from wf import REPO, make_workdir, run_snakemake

    cfg = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    pti = {**cfg["pti"], "epochs": 2, "lr": 3e-4}
    stitching = {**cfg["stitching"], "max_steps": 2}
    wd = make_workdir(tmp_path_factory.mktemp("eval"), tmp_path_factory.mktemp("eval_cache"), shared_data,
                      edits={"older": {"age": 8}},
                      extra_config={"pack": "demo", "methods": ["e4e", "stit"], "sweeps": {"older": [0.5]},
                                    "pti": pti, "stitching": stitching})
    run_snakemake(wd)
    run_snakemake(wd, "--report", str(wd / "report.html"))
    return wd


@pytest.mark.slow
def test_workflow_metrics_figures_tables_report(evaluated):
    import json

    import cv2
    import pandas as pd

    res = evaluated / "results" / "clip"
    methods, edits = ["e4e", "stit"], ["_recon", "older", "older_x0p5"]
    per_frame_cols = {"frame", "found_src", "found_edit", "edited", "id_dist", "id_cos", "adj_cos_src",
                      "adj_cos_edit", "adj_ratio", "age_src", "age_edit", "age_delta", "p_male_delta",
                      "smile_delta", "recon_psnr", "recon_ssim"}
    for m in methods:
        for e in edits:
            df = pd.read_csv(res / "metrics" / m / f"{e}.csv")
            assert per_frame_cols <= set(df.columns), sorted(per_frame_cols - set(df.columns))
            assert "recon_lpips" not in df  # the demo pack ships no LPIPS weights
            assert len(df) == 33 and df["found_src"].mean() > 0.9
            both = df["found_src"] & df["found_edit"]
            assert both.mean() > 0.5, f"{m}/{e}: the edited face should be found again on most frames"
            for col in ("id_dist", "age_delta", "p_male_delta", "smile_delta", "recon_psnr", "recon_ssim"):
                assert np.isfinite(df.loc[both, col]).all(), (m, e, col)
            s = json.loads((res / "metrics" / m / f"{e}.json").read_text())
            assert 0.5 < s["tl_id"] < 1.5 and 0.5 < s["tg_id"] < 1.5, s
            assert 5 < s["recon_psnr"] < 60 and 0 < s["recon_ssim"] <= 1, s
            assert any("no LPIPS" in n for n in s["notes"])
    assert sorted(p.name for p in (res / "metrics").glob("*.npz")) == ["source.npz"]  # source side computed once

    table = pd.read_csv(evaluated / "results" / "tables" / "metrics.csv")
    assert len(table) == len(methods) * len(edits)
    assert set(zip(table["method"], table["edit"])) == {(m, e) for m in methods for e in edits}
    for col in ("tl_id", "tg_id", "id_dist", "recon_psnr", "recon_ssim", "age_delta", "p_male_delta",
                "smile_delta", "spf_landmarks", "spf_encode", "spf_pipeline", "spf_metrics"):
        assert np.isfinite(table[col]).all(), col
    stit = table[table["method"] == "stit"].set_index("edit")
    assert np.isfinite(stit.loc["older", "spf_render"]) and np.isfinite(stit.loc["older", "spf_pti"])
    assert np.isnan(table.set_index(["method", "edit"]).loc[("e4e", "older"), "spf_pti"])  # e4e has no PTI
    methods_table = pd.read_csv(evaluated / "results" / "tables" / "methods.csv")
    assert sorted(methods_table["method"]) == methods
    assert "tl_id" in (evaluated / "results" / "tables" / "tables.html").read_text()

    for name in ("comparison_older", "alignment", "identity", "id_bars", "sweep_older"):
        img = cv2.imread(str(res / "figures" / f"{name}.png"))
        assert img is not None and img.shape[0] > 200 and img.shape[1] > 300, name
    report = evaluated / "report.html"
    assert report.is_file() and report.stat().st_size > 0


def test_global_means_blockwise_equal_the_full_matrices():
    """TG-ID and the global means, computed a block of rows at a time (memory block x T), equal the T x T definition
    (R = S_edit / S_src over all pairs i != j), also when T is not a multiple of the block."""
    rng = np.random.default_rng(3)
    A = rng.normal(size=(300, 16))
    B = A + 0.2 * rng.normal(size=A.shape)
    U, V = unit_rows(A), unit_rows(B)
    S, E = U @ U.T, V @ V.T
    off = ~np.eye(len(A), dtype=bool)
    got = identity_consistency(A, B)
    assert got["tg_id"] == pytest.approx((E / S)[off].mean(), rel=1e-9)
    assert got["src_global"] == pytest.approx(S[off].mean(), rel=1e-9, abs=1e-12)
    assert got["edit_global"] == pytest.approx(E[off].mean(), rel=1e-9, abs=1e-12)
    i = np.arange(len(A) - 1)
    assert got["tl_id"] == pytest.approx((E[i, i + 1] / S[i, i + 1]).mean(), rel=1e-9)
