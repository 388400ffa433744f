"""Paste back (stitch.paste): crop -> paste of an unedited crop reproduces the frame; outside is untouched."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from stitch.align import ffhq_quad
from stitch.crop import crop_face
from stitch.paste import feather, paste_face, paste_video


def read_frames(path, count):
    try:
        from stitch.video import read_frames as rf
    except ImportError:
        rf = None
    if rf is not None:
        return rf(path, 0, count)
    import av

    out = []
    with av.open(str(path)) as c:
        for f in c.decode(video=0):
            out.append(np.ascontiguousarray(f.to_ndarray(format="rgb24")))
            if len(out) == count:
                break
    return np.stack(out)


def quad_region(quad, shape, erode=0, dilate=0):
    m = np.zeros(shape[:2], np.uint8)
    cv2.fillConvexPoly(m, np.rint(np.asarray(quad) * 16).astype(np.int32), 1, shift=4)
    if erode:
        m = cv2.erode(m, np.ones((2 * erode + 1,) * 2, np.uint8))
    if dilate:
        m = cv2.dilate(m, np.ones((2 * dilate + 1,) * 2, np.uint8))
    return m.astype(bool)


def smooth_image(h, w, seed=0):
    rng = np.random.default_rng(seed)
    small = rng.uniform(0, 255, (h // 16, w // 16, 3)).astype(np.float32)
    img = cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)
    return np.clip(img, 0, 255).astype(np.uint8)


QUAD = np.array([[60.3, 40.7], [45.1, 190.2], [195.6, 205.4], [210.2, 55.9]])


def test_roundtrip_synthetic_and_outside_identical():
    frame = smooth_image(256, 288)
    crop = crop_face(frame, QUAD, 192)
    out = paste_face(frame, crop, QUAD, None)
    inner = quad_region(QUAD, frame.shape, erode=3)
    err = np.abs(out.astype(int) - frame.astype(int))
    assert err[inner].mean() < 2.0
    outside = ~quad_region(QUAD, frame.shape, dilate=2)
    assert np.array_equal(out[outside], frame[outside])


def test_alpha_zero_is_bit_identical():
    frame = smooth_image(200, 240, seed=1)
    crop = np.full((128, 128, 3), 255, np.uint8)
    out = paste_face(frame, crop, QUAD * 0.8, np.zeros((128, 128), np.float32))
    assert np.array_equal(out, frame)
    # alpha zero on the left half of the crop: that half of the quad is untouched, the right half is white
    alpha = np.zeros((128, 128), np.float32)
    alpha[:, 64:] = 1.0
    out = paste_face(frame, crop, QUAD * 0.8, alpha)
    q = QUAD * 0.8
    left = quad_region([q[0], q[1], (q[1] + q[2]) / 2, (q[0] + q[3]) / 2], frame.shape, erode=2)
    right = quad_region([(q[0] + q[3]) / 2, (q[1] + q[2]) / 2, q[2], q[3]], frame.shape, erode=2)
    assert np.array_equal(out[left], frame[left])
    assert (out[right] == 255).all()
    assert out.dtype == np.uint8 and out is not frame


def test_half_alpha_blends():
    frame = np.zeros((100, 100, 3), np.uint8)
    crop = np.full((64, 64, 3), 200, np.uint8)
    quad = np.array([[20.0, 20.0], [20.0, 80.0], [80.0, 80.0], [80.0, 20.0]])
    out = paste_face(frame, crop, quad, np.full((64, 64), 0.5, np.float32))
    assert (out[30:70, 30:70] == 100).all()
    assert (out[:15] == 0).all() and (out[:, 86:] == 0).all()


def test_small_quad_large_crop_no_alias():
    frame = smooth_image(120, 120, seed=2)
    quad = np.array([[30.0, 30.0], [30.0, 90.0], [90.0, 90.0], [90.0, 30.0]])
    crop = crop_face(frame, quad, 512)  # pasted back 8x smaller: shrunk by area averaging first
    out = paste_face(frame, crop, quad, None)
    inner = quad_region(quad, frame.shape, erode=2)
    assert np.abs(out.astype(int) - frame.astype(int))[inner].mean() < 2.0


def test_feather():
    m = np.zeros((100, 100), np.float32)
    m[20:80, 20:80] = 1
    f = feather(m, 6)
    assert f.dtype == np.float32 and f.min() >= 0 and f.max() <= 1
    assert (f[m == 0] == 0).all()
    assert np.allclose(f[35:65, 35:65], 1.0)
    row = f[50, 15:50]
    assert (np.diff(row) >= -1e-6).all() and 0 < f[50, 27] < 1
    np.testing.assert_array_equal(feather(m, 0), m)
    # a mask touching the crop edge fades out towards it too
    edge = np.ones((50, 50), np.float32)
    fe = feather(edge, 5)
    assert fe[0, 25] < 0.02 and fe[25, 25] == pytest.approx(1.0)


def test_paste_video_valid_and_faces():
    frames = np.stack([smooth_image(100, 100, seed=s) for s in range(3)])
    quad = np.array([[20.0, 20.0], [20.0, 80.0], [80.0, 80.0], [80.0, 20.0]])
    crops = np.full((3, 32, 32, 3), 10, np.uint8)
    quads = np.repeat(quad[None], 3, 0)
    alphas = np.full((3, 32, 32), 255, np.uint8)  # uint8 alphas are scaled by 1/255
    out = list(paste_video(iter(frames), crops, quads, alphas, np.array([True, False, True])))
    assert len(out) == 3
    assert (out[0][30:70, 30:70] == 10).all() and (out[2][30:70, 30:70] == 10).all()
    assert np.array_equal(out[1], frames[1])
    # two faces: face 0 ends on top where they overlap
    crops2 = np.stack([np.full((3, 32, 32, 3), 10, np.uint8), np.full((3, 32, 32, 3), 99, np.uint8)])
    quads2 = np.stack([quads, quads + 10])
    out = list(paste_video(frames, crops2, quads2, None, np.ones((2, 3), bool), feather_px=0))
    assert (out[0][40:70, 40:70] == 10).all() and (out[0][82:88, 82:88] == 99).all()


def test_roundtrip_real_frame(shared_data):
    frame = read_frames(shared_data / "videos" / "talk_1.mp4", 1)[0]
    from stitch.landmarks import FaceLandmarker

    dets = FaceLandmarker().detect(frame)
    assert dets, "no face on the first frame of talk_1"
    quad = ffhq_quad(dets[0].landmarks)
    crop = crop_face(frame, quad, 256)
    out = paste_face(frame, crop, quad, np.ones((256, 256), np.float32))
    h, w = frame.shape[:2]
    whole = np.array([[0, 0], [0, h - 1], [w - 1, h - 1], [w - 1, 0]], float)
    inner = quad_region(quad, frame.shape, erode=3) & quad_region(whole, frame.shape, erode=3)
    err = np.abs(out.astype(int) - frame.astype(int))
    assert err[inner].mean() < 3.0, err[inner].mean()
    outside = ~quad_region(quad, frame.shape, dilate=2)
    assert outside.sum() > 0.3 * outside.size
    assert np.array_equal(out[outside], frame[outside])


# --------------------------------------------------------------------------------------------- paste.mode detail

def textured_image(h, w, seed=0):
    """Smooth colours plus fine full-resolution texture (what an up-scaled low-resolution render loses)."""
    rng = np.random.default_rng(seed)
    img = smooth_image(h, w, seed).astype(np.float32) * 0.7 + rng.uniform(0, 60, (h, w, 3)).astype(np.float32)
    return np.clip(img, 0, 255).astype(np.uint8)


def lap_var(img, region):
    grey = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY).astype(np.float64)
    return cv2.Laplacian(grey, cv2.CV_64F, ksize=1)[region].var()


def test_detail_zero_edit_is_the_source_exactly():
    frame = textured_image(256, 288, seed=3)
    recon = cv2.GaussianBlur(crop_face(frame, QUAD, 64), (5, 5), 0)  # a blurry low-resolution "reconstruction"
    alpha = feather(np.pad(np.ones((48, 48), np.float32), 8), 4)
    out = paste_face(frame, recon, QUAD, alpha, base=recon)
    assert np.array_equal(out, frame)
    # the generator mode pastes the blur instead
    gen = paste_face(frame, recon, QUAD, alpha)
    assert not np.array_equal(gen, frame)
    # video level: bases of the same shape as the crops, several frames
    frames = np.stack([frame, frame[::-1].copy()])
    crops, quads = np.stack([recon, recon]), np.stack([QUAD, QUAD])
    outs = list(paste_video(iter(frames), crops, quads, np.stack([alpha, alpha]), np.ones(2, bool), 2, bases=crops))
    assert all(np.array_equal(o, f) for o, f in zip(outs, frames))


def test_detail_transfers_a_low_frequency_change_and_keeps_the_detail():
    frame = textured_image(256, 288, seed=4)
    size = 64
    recon = cv2.GaussianBlur(crop_face(frame, QUAD, size), (7, 7), 0).astype(np.float32)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    change = (30.0 * np.sin(np.pi * xx / (size - 1)) * np.sin(np.pi * yy / (size - 1)))[..., None] * [1.0, 0.5, -0.5]
    edited = np.clip(np.rint(recon + change), 0, 255).astype(np.uint8)
    recon = recon.astype(np.uint8)
    out = paste_face(frame, edited, QUAD, None, base=recon)
    # the change, warped to the frame, lands on the source: compare with the change pasted on its own
    delta_frame = paste_face(np.full_like(frame, 128), np.clip(128 + (edited.astype(int) - recon), 0, 255).astype(
        np.uint8), QUAD, None).astype(np.float32) - 128
    inner = quad_region(QUAD, frame.shape, erode=4)
    got = out.astype(np.float32) - frame.astype(np.float32)
    assert np.abs(got - delta_frame)[inner].mean() < 1.0
    centre = np.zeros(frame.shape[:2], bool)
    centre[110:140, 115:145] = True  # middle of the quad, where the change is ~ +30 / +15 / -15
    assert np.allclose(got[centre].mean(axis=0), [30, 15, -15], atol=3)
    # the source's fine texture survives (the generator mode pastes the blurry render)
    assert lap_var(out, inner) > 0.8 * lap_var(frame, inner)
    assert lap_var(paste_face(frame, edited, QUAD, None), inner) < 0.3 * lap_var(frame, inner)


def test_frame_alpha_is_the_pasted_opacity():
    from stitch.paste import frame_alpha

    frame = np.zeros((256, 288, 3), np.uint8)
    alpha = feather(np.pad(np.ones((48, 48), np.float32), 8), 4)
    out = paste_face(frame, np.full((64, 64, 3), 255, np.uint8), QUAD, alpha)
    a = frame_alpha(frame.shape, alpha, QUAD)
    assert a.shape == frame.shape[:2] and a.dtype == np.float32
    assert np.abs(out[..., 0].astype(np.float32) - 255 * a).max() <= 1.0
    assert (out[a == 0] == 0).all() and (out[a >= 1 / 255] > 0).all()


def test_bad_mode_and_missing_recon_are_one_line(tmp_path):
    from stitch.errors import StitchError
    from stitch.paste import load_inputs

    from stitch.stagefiles import MASK_KINDS, FaceCrops, Masks, Quads

    crops, valid = tmp_path / "crops.npz", np.ones((1, 2), bool)
    FaceCrops(np.zeros((1, 2, 8, 8, 3), np.uint8), valid).save(crops)
    Quads(np.zeros((1, 2, 4, 2)), valid, np.zeros((1, 2, 4, 2)), np.zeros(1, np.int64)).save(tmp_path / "quads.npz")
    Masks({k: np.zeros((1, 2, 8, 8), np.uint8) for k in MASK_KINDS}, valid, "landmarks").save(tmp_path / "masks.npz")
    args = (crops, tmp_path / "quads.npz", tmp_path / "masks.npz")
    for mode, recon, words in (("detial", None, ("detial", "generator, detail")),
                               ("detail", None, ("reconstruction",))):
        with pytest.raises(StitchError) as e:
            load_inputs(*args, mode=mode, recon_npz=recon)
        assert "\n" not in str(e.value) and all(w in str(e.value) for w in words)
    FaceCrops(np.zeros((1, 2, 8, 8, 3), np.uint8), np.array([[True, False]])).save(tmp_path / "recon.npz")
    with pytest.raises(StitchError, match="do not match"):
        load_inputs(*args, mode="detail", recon_npz=tmp_path / "recon.npz")
    assert load_inputs(*args, mode="generator")["bases"] is None


def test_misspelt_mode_refused_by_the_schema_in_one_line():
    import yaml

    from stitch.errors import StitchError
    from stitch.settings import parse_sample_row, resolve

    from wf import REPO

    schema = yaml.safe_load((REPO / "workflow" / "schemas" / "config.schema.yaml").read_text())
    assert resolve({}, {"paste": {"mode": "detail"}}, {}, None, schema)["paste"]["mode"].value == "detail"
    assert resolve({}, {"paste": {"mode": None}}, {}, None, schema)["paste"]["mode"].value == "generator"
    for layer in ("config", "pack"):
        cfg = {"paste": {"mode": "detial"}} if layer == "config" else {}
        pack = {"paste": {"mode": "detial"}} if layer == "pack" else {}
        with pytest.raises(StitchError) as e:
            resolve({}, cfg, pack, {layer: f"the {layer}"}, schema)
        assert "\n" not in str(e.value) and "paste.mode" in str(e.value) and "detial" in str(e.value)
    with pytest.raises(StitchError) as e:
        parse_sample_row({"sample": "a", "path": "a.mp4", "paste_mode": "Detail"}, "samples.tsv", (), schema)
    assert "\n" not in str(e.value) and "paste.mode" in str(e.value)


def test_workflow_wires_the_reconstruction_into_detail_paste(tmp_path, shared_data):
    """Dry runs: mode detail gives paste the method's _recon crops; a misspelt mode stops at the config schema."""
    import re

    from wf import make_workdir, run_snakemake

    wd = make_workdir(tmp_path / "wd", tmp_path / "cache", shared_data, extra_config={"paste": {"mode": "detail"}})
    run_snakemake(wd, "results/clip/frames/info.json")  # the checkpoint: the paste shards are planned after it
    out = run_snakemake(wd, "-n", "results/clip/encode/stit/older.mp4").stdout
    jobs = {m.group(2): m.group(1) for m in re.finditer(r"rule paste:\n\s+input: ([^\n]*)\n\s+output: ([^,\s]+)", out)}
    older = jobs["results/clip/paste/stit/older/0000.mp4"].split(", ")
    assert older[1].endswith("stitching/older/0000.npz") and "results/clip/recon/0000.npz" in older, older
    gen = make_workdir(tmp_path / "gen", tmp_path / "cache", shared_data)
    run_snakemake(gen, "results/clip/frames/info.json")
    out = run_snakemake(gen, "-n", "results/clip/encode/stit/older.mp4").stdout
    inputs = re.search(r"rule paste:\n\s+input: ([^\n]*)\n\s+output: \S+older/0000.mp4", out).group(1)
    assert "recon/" not in inputs
    bad = make_workdir(tmp_path / "bad", tmp_path / "cache", shared_data, extra_config={"paste": {"mode": "detial"}})
    proc = run_snakemake(bad, "-n", "results/clip/encode/stit/older.mp4", check=False)
    assert proc.returncode != 0
    lines = (proc.stdout + proc.stderr).splitlines()
    assert len(lines) == 1 and "paste.mode" in lines[0] and "'detial' is not one of" in lines[0], lines
