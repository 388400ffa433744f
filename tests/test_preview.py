"""The preview target: every edit on a few keyframes (e4e only) as one contact sheet per video."""

from __future__ import annotations

import json

import numpy as np
import pytest

from stitch.preview import face_box, pick_keyframes, tile


def test_pick_keyframes_spread_over_the_track():
    valid = np.zeros(40, bool)
    valid[5:30] = True
    valid[12] = False
    keys = pick_keyframes(valid, 5)
    assert keys.tolist() == [5, 11, 18, 23, 29]
    assert valid[keys].all()
    assert pick_keyframes(valid[:7], 5).tolist() == [5, 6]
    assert pick_keyframes(np.zeros(9, bool), 5).size == 0


def test_face_box_is_a_square_inside_the_frame():
    quad = np.array([[150.0, 10], [150, 90], [230, 90], [230, 10]])
    x0, y0, x1, y1 = face_box(quad, (120, 240))
    assert x1 - x0 == y1 - y0 == 104 and (x0, y0) == (136, 0) and x1 <= 240


@pytest.mark.slow
def test_preview_contact_sheet(tmp_path, shared_data):
    from PIL import Image

    from stitch.video import read_frames
    from wf import make_workdir, run_snakemake

    wd = make_workdir(tmp_path / "wd", tmp_path / "cache", shared_data,
                      edits={"older": {"age": 8, "start": 0.2, "end": 0.8}, "smile": {"smile": 3}},
                      extra_config={"sweeps": {"older": [2]}})
    run_snakemake(wd, "preview")
    res = wd / "results" / "clip"
    layout = json.loads((res / "preview" / "layout.json").read_text())
    sheet = np.asarray(Image.open(res / "preview" / "contact_sheet.png").convert("RGB"))
    columns = ["source", "reconstruction", "older", "smile", "older_x2"]
    assert layout["columns"] == columns
    valid = np.load(res / "align" / "quads.npz")["valid"][0]
    keys = pick_keyframes(valid, 5)
    assert layout["keyframes"] == keys.tolist() and len(keys) == 5
    size = layout["tile"]
    assert sheet.shape == (layout["height"], layout["width"], 3)
    assert len(layout["y"]) == 5 and len(layout["x"]) == len(columns)
    assert layout["height"] >= 5 * size and layout["width"] >= len(columns) * size

    def cell(r, c):
        return sheet[layout["y"][r]:layout["y"][r] + size, layout["x"][c]:layout["x"][c] + size]

    frames = read_frames(wd / "inputs" / "clip.mp4")
    for r, t in enumerate(keys):
        np.testing.assert_array_equal(cell(r, 0), tile(frames[t], layout["boxes"][r]))  # the source, untouched
        recon = cell(r, 1).astype(int)
        assert np.abs(recon - cell(r, 0)).mean() > 1.0, "the reconstruction replaces the face"
        for c in range(2, len(columns)):
            assert np.abs(cell(r, c).astype(int) - recon).mean() > 0.1, (t, columns[c])
    assert not (res / "crop").exists() and not (res / "pti").exists(), "the preview needs no full crop, no PTI"
