"""benchmarks/bench_schedule.py's tables on a constructed metrics.csv: several PTI seeds per schedule are averaged
for the bars and summarised (mean, SD, Welch's t) per metric; the time totals count each seed once
(each video's mean over its seeds)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from bench_schedule import bars, seed_spread, table, totals  # noqa: E402

TL = {"reference": [0.990, 0.992, 0.994], "fast": [0.980, 0.981, 0.982]}  # fast lower, well outside the spread
AGE = {"reference": [6.0, 8.0, 10.0], "fast": [7.0, 9.0, 11.0]}  # fast +1 year, inside the spread


def _metrics(tmp_path: Path, seeds=(0, 1, 2)) -> Path:
    rows = []
    for schedule in ("reference", "fast"):
        for j, k in enumerate(seeds):
            sample = f"vid__{schedule}__s{k}" if len(seeds) > 1 else f"vid__{schedule}"
            base = {"video": sample, "method": "stit", "frames": 10, "steps_per_frame": 1.0, "forwards_per_frame": 1.0,
                    "spf_pipeline": 1.0, "tl_id": TL[schedule][j], "tg_id": 0.9, "id_dist": 0.3,
                    "seam_mse": 0.01 * (1 + j), "age_delta": AGE[schedule][j], "p_male_delta": 0.0,
                    "smile_delta": 0.0, "spf_pti": 10.0 if schedule == "reference" else 2.0}
            rows.append({**base, "edit": "older", "spf_render": 1.0})
            rows.append({**base, "edit": "to_male", "spf_render": 1.0, "p_male_delta": 0.5})
            rows.append({**base, "edit": "to_female", "spf_render": 1.0, "p_male_delta": -0.1})
            rows.append({**base, "edit": "_recon", "spf_render": 0.0, "recon_psnr": 30.0 + j, "recon_ssim": 0.9})
    (tmp_path / "results" / "tables").mkdir(parents=True)
    pd.DataFrame(rows).to_csv(tmp_path / "results" / "tables" / "metrics.csv", index=False)
    return tmp_path


def test_seeds_are_averaged_and_their_spread_reported(tmp_path):
    t = table(_metrics(tmp_path))
    assert sorted(t["seed"].unique()) == [0, 1, 2] and set(t["video"]) == {"vid"}
    assert set(t["edit"]) == {"older", "to_male", "_recon"}  # the gender edit that changes the sex, by the mean
    assert (t.loc[t["edit"] == "older"].sort_values(["schedule", "seed"])["recon_psnr"].tolist()
            == [30.0, 31.0, 32.0] * 2)
    b = bars(t).set_index("edit")
    assert b.loc["older", "d_tl_id"] == pytest.approx(np.mean(TL["fast"]) - np.mean(TL["reference"]))
    assert b.loc["older", "probe_ratio"] == pytest.approx(9.0 / 8.0)
    s = seed_spread(t).set_index(["edit", "metric"])
    tl, age = s.loc[("older", "tl_id")], s.loc[("older", "age_delta")]
    assert tl["seeds"] == "3/3" and tl["ref_sd"] == pytest.approx(0.002) and tl["fast_sd"] == pytest.approx(0.001)
    assert tl["welch_t"] == pytest.approx(-0.011 / np.sqrt((0.002**2 + 0.001**2) / 3))  # -8.5: beyond the seeds
    assert age["diff"] == pytest.approx(1.0) and abs(age["welch_t"]) < 1  # 0.61: inside the seeds' spread
    assert s.loc[("older", "seam_mse"), "welch_t"] == 0  # the same values under both schedules
    # PTI once and the two edits' stitching per seed: (10 + 2) x 10 frames vs (2 + 2) x 10, not x 3 seeds
    assert "reference 120 s, fast 40 s (ratio 3.00)" in totals(t)
    # a schedule run with fewer seeds: each video's mean over its own seeds, not the sum over all seeds / 3
    fewer = t[~((t["schedule"] == "reference") & (t["seed"] == 2))]
    assert "reference 120 s, fast 40 s (ratio 3.00)" in totals(fewer)


def test_one_seed_keeps_the_two_part_sample_names(tmp_path):
    t = table(_metrics(tmp_path, seeds=(0,)))
    assert t["seed"].eq(0).all() and set(t["schedule"]) == {"reference", "fast"}
    assert seed_spread(t)["welch_t"].isna().all()
    assert "reference 120 s, fast 40 s" in totals(t)
