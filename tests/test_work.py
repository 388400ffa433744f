"""Generator work counting (issue #13): the steps and forwards PTI, stitching and the renders record equal the
passes that really ran (counted with hooks on the synthesis network), and the tables divide shared work."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from stitch.configs import PTIConfig, StitchingConfig
from stitch.pti import edit_space, pti_tune
from stitch.stagefiles import FaceCrops
from stitch.stitching import stitch_frame
from stitch.tables import work_columns
from stitch.work import per_frame_per_edit, sum_work, work, work_of


class Passes:
    """Counts the images passed forward and backward through every copy of a generator's synthesis network. The
    hooks are plain closures: ``copy.deepcopy`` (PTI's and stitching's tuned copies) keeps a function as it is, so
    the copies count into the same counter (a bound method would be copied with its object)."""

    def __init__(self, G):
        count = self.count = {"forward": 0, "backward": 0}

        def fwd(module, args, output):
            count["forward"] += output.shape[0]

        def bwd(module, grad_input, grad_output):
            count["backward"] += grad_output[0].shape[0]

        self.handles = [G.synthesis.register_forward_hook(fwd), G.synthesis.register_full_backward_hook(bwd)]

    def close(self):
        for h in self.handles:
            h.remove()

    def as_work(self):  # a step is a forward with its backward
        return self.count["backward"], self.count["forward"] - self.count["backward"]


def _problem(G, n=3):
    ws = torch.randn(n, G.num_ws, G.w_dim, generator=torch.Generator().manual_seed(1)).numpy()
    crops = np.random.default_rng(0).integers(0, 256, (n, G.img_resolution, G.img_resolution, 3), np.uint8)
    return ws, crops


@pytest.mark.parametrize("reg, every, regularised", [(0.0, 1, 0), (1.0, 1, 6), (1.0, 4, 2)],
                         ids=["plain", "edit regulariser", "regulariser every 4th update"])
def test_pti_records_the_passes_it_ran(G, reg, every, regularised):
    """6 updates (2 epochs x 3 frames); the regulariser adds one step on every ``every``-th (updates 0 and 4)."""
    ws, crops = _problem(G)
    space = edit_space({"age": torch.randn(G.num_ws, G.w_dim) * 0.1}) if reg else None
    passes = Passes(G)
    try:
        cfg = PTIConfig(epochs=2, lr=1e-3, edit_reg_weight=reg, edit_reg_every=every)
        _, st = pti_tune(G, ws, crops, cfg, progress=False, space=space)
    finally:
        passes.close()
    assert (st["work"]["generator_steps"], st["work"]["generator_forwards"]) == passes.as_work()
    assert st["work"]["generator_steps"] == 6 + regularised and st["work"]["shared_by_edits"]


@pytest.mark.parametrize("threshold, max_steps", [(0.0, 4), (1e9, 4), (0.0, 0)], ids=["full", "early stop", "off"])
def test_stitching_records_the_passes_it_ran(G, threshold, max_steps):
    r = G.img_resolution
    w = torch.randn(1, G.num_ws, G.w_dim, generator=torch.Generator().manual_seed(2))
    border = torch.zeros(1, 1, r, r)
    border[..., :3, :] = 1
    passes = Passes(G)
    try:
        _, st = stitch_frame(G, w, torch.zeros(1, 3, r, r), border, 1 - border,
                             StitchingConfig(max_steps=max_steps, lr=1e-3, border_threshold=threshold))
    finally:
        passes.close()
    assert (st["steps"], st["forwards"]) == passes.as_work()
    assert st["steps"] == (4 if threshold == 0.0 and max_steps else 0)


def test_work_sums_and_shares():
    frames = [{"steps": 3, "forwards": 1}, {"steps": 0, "forwards": 2}]
    assert work_of(frames) == work(3, 3)
    assert sum_work([work(4, 2, True), work(6, 1, True)]) == work(10, 3, True)
    # 10 frames, 4 edits: PTI's 80 steps are shared (20 per edit), stitching's 30 are this edit's own
    assert per_frame_per_edit([work(80, 8, True), work(30, 10)], frames=10, edits=4) == (5.0, 1.2)


def test_tables_read_work_from_stats_files(tmp_path):
    pti = tmp_path / "stats.json"
    pti.write_text(json.dumps({"work": work(120, 20, True)}))
    crops = tmp_path / "older.npz"
    FaceCrops(np.zeros((1, 10, 4, 4, 3), np.uint8), np.ones((1, 10), bool), {"work": work(50, 15)}).save(crops)
    summaries = [{"video": "v", "method": "stit", "edit": "older", "frames": 10},
                 {"video": "v", "method": "e4e", "edit": "older", "frames": 10}]
    files = {"v/stit/older": [str(crops), str(pti)], "v/e4e/older": [str(tmp_path / "missing.npz")]}
    df = work_columns(summaries, {"files": files, "edits": 3}).set_index("method")
    assert df.loc["stit", "steps_per_frame"] == pytest.approx((120 / 3 + 50) / 10)
    assert df.loc["stit", "forwards_per_frame"] == pytest.approx((20 / 3 + 15) / 10)
    assert np.isnan(df.loc["e4e", "steps_per_frame"])  # no record: not a made-up zero


def test_job_wall_seconds_from_benchmarks_and_cpu_seconds_from_logs(tmp_path):
    """job_seconds sums a job's shards' benchmark wall seconds; job_cpu_seconds their logs' last ``CPU time`` line
    (exact, where the benchmark's sampled cpu_time is not); NaN when the job left nothing."""
    from stitch.tables import job_cpu_seconds, job_seconds, read_benchmark

    head = "s\th:m:s\tmax_rss\tcpu_time\n"
    (tmp_path / "pti.tsv").write_text(head + "10.0\t0:00:10\t1\t7.5\n")
    (tmp_path / "pti.log").write_text("x INFO stitch: CPU time 3.0 s\nx INFO stitch: CPU time 9.8 s\n"
                                      "x INFO stitch: peak RSS 400.0 MB\n")  # a rerun appended: the last counts
    for i, (s, c) in enumerate([(4.0, 3.5), (6.0, 5.5)]):
        (tmp_path / f"stitching_smile_{i:04d}.tsv").write_text(head + f"{s}\t0:00:0{int(s)}\t1\t1.0\n")
        (tmp_path / f"stitching_smile_{i:04d}.log").write_text(f"x INFO stitch: CPU time {c} s\n")
    (tmp_path / "stitching_to_male_0000.log").write_text("x INFO stitch.stitching: killed before the end\n")
    assert read_benchmark(tmp_path / "pti.tsv") == job_seconds(tmp_path, "pti") == 10.0
    assert job_cpu_seconds(tmp_path, "pti") == 9.8
    assert job_seconds(tmp_path, "stitching_smile") == 10.0
    assert job_cpu_seconds(tmp_path, "stitching_smile") == 9.0
    assert math.isnan(job_seconds(tmp_path, "stitching_older"))
    assert math.isnan(job_cpu_seconds(tmp_path, "stitching_older"))
    assert math.isnan(job_cpu_seconds(tmp_path, "stitching_to_male"))
