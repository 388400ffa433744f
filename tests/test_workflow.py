"""The real workflow end to end on a 1.5 s cut of talk_1 (with audio) and a tiny random-weight pack.

Checks what users rely on: same frame count / fps / audio, untouched pixels outside the pasted face, only the
right stages rerun after a config change, lint, config validation and a video with no
face failing with one clear line, and the review pages (rule review; they play in headless Chromium). Kills,
resumes and run-to-run determinism: tests/test_faults.py.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
import yaml

from wf import CLIP_FRAMES, REPO, make_workdir, pasted_frames, run_snakemake, snakemake_cmd

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("wf_cache")


@pytest.fixture(scope="module")
def done(tmp_path_factory, cache, shared_data):
    """A finished run (two edits, temp files kept) shared by the tests below."""
    wd = make_workdir(tmp_path_factory.mktemp("e2e"), cache, shared_data,
                      edits={"older": {"age": 8}, "smile": {"smile": 3}})
    run_snakemake(wd, "--notemp")
    return wd


def planned_jobs(workdir, *args) -> list[tuple[str, dict]]:
    """(rule, wildcards) of every job a dry run schedules."""
    out = run_snakemake(workdir, "--dry-run", *args).stdout
    jobs = []
    for block in re.split(r"\n(?=(?:local)?rule \w+:)", out):
        m = re.match(r"(?:local)?rule (\w+):", block.strip())
        if not m:
            continue
        wc = re.search(r"wildcards: (.*)", block)
        wildcards = dict(kv.split("=", 1) for kv in wc.group(1).split(", ")) if wc else {}
        jobs.append((m.group(1), wildcards))
    return jobs


def edit_config(workdir, change) -> None:
    path = workdir / "config" / "config.yaml"
    cfg = yaml.safe_load(path.read_text())
    change(cfg)
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))


def copy_workdir(src, dst):
    shutil.copytree(src, dst, symlinks=True)  # copy2 keeps mtimes; .snakemake keeps the run's metadata
    return dst


def quad_region(quads: np.ndarray, valid: np.ndarray, shape) -> np.ndarray:
    """(T, H, W) bool: inside any valid face quad (dilated 2 px)."""
    region = np.zeros((valid.shape[1],) + shape, np.uint8)
    for f in range(valid.shape[0]):
        for t in np.flatnonzero(valid[f]):
            cv2.fillConvexPoly(region[t], np.round(quads[f, t]).astype(np.int32), 1)
    kernel = np.ones((5, 5), np.uint8)
    return np.stack([cv2.dilate(r, kernel) for r in region]).astype(bool)


def test_end_to_end_same_length_fps_audio(done):
    from stitch.video import audio_duration, probe

    src, out = done / "inputs" / "clip.mp4", done / "results" / "clip" / "encode" / "stit" / "older.mp4"
    si, oi = probe(src), probe(out)
    assert si.num_frames == oi.num_frames == CLIP_FRAMES
    assert si.fps == oi.fps == Fraction(1350, 61)
    assert (oi.width, oi.height) == (si.width, si.height)
    assert oi.has_audio
    assert abs(audio_duration(out) - audio_duration(src)) < 0.03  # within one AAC frame
    sbs = probe(done / "results" / "clip" / "encode" / "stit" / "side_by_side_older.mp4")
    assert sbs.num_frames == CLIP_FRAMES and sbs.width >= 3 * si.width


def test_pixels_outside_face_unchanged(done):
    from stitch.video import read_frames

    res = done / "results" / "clip"
    frames = read_frames(done / "inputs" / "clip.mp4")
    pasted = pasted_frames(done, "older")
    q = np.load(res / "align" / "quads.npz")
    assert q["valid"].any(axis=0).mean() > 0.9, "the face should be tracked on (almost) every frame"
    region = quad_region(q["quads"], q["valid"], frames.shape[1:3])
    assert pasted.shape == frames.shape
    np.testing.assert_array_equal(pasted[~region], frames[~region])
    changed = (pasted != frames).any(-1)
    assert changed[region].mean() > 0.05, "the face region should actually be edited"
    encoded = read_frames(res / "encode" / "stit" / "older.mp4").astype(int)
    assert np.abs(encoded[~region] - frames[~region]).mean() < 2.0  # H.264 at crf 18


def test_edit_change_reruns_only_that_edit(done, tmp_path):
    wd = copy_workdir(done, tmp_path / "wd")
    assert planned_jobs(wd) == [], "a finished run should have nothing to do"
    edit_config(wd, lambda c: c["edits"].update(older={"age": 5}))
    jobs = planned_jobs(wd)
    rules = sorted(r for r, _ in jobs if r != "all")
    # the edit's own stages and its metrics; figures, tables and the review pages gather every edit of the video
    assert rules == ["describe", "edit", "encode", "figures", "metrics", "paste", "review", "review_index",
                     "stitching", "tables"], jobs
    gathering = ("all", "figures", "tables", "review", "review_index")
    assert all(wc.get("edit") == "older" for r, wc in jobs if r not in gathering), jobs


def test_pti_change_reruns_pti_and_descendants(done, tmp_path):
    wd = copy_workdir(done, tmp_path / "wd")
    edit_config(wd, lambda c: c["pti"].update(epochs=3))
    rules = {r for r, _ in planned_jobs(wd)}
    # the source-side metrics (describe_source, metrics_source) and the review page's source video do not depend
    # on PTI; settings.yaml records the new value
    assert rules == {"settings", "pti", "recon", "stitching", "paste_recon", "paste", "encode", "encode_recon",
                     "describe", "metrics", "figures", "tables", "review", "review_index", "all"}, rules


def test_failed_job_leaves_nothing_stale(done, tmp_path):
    """Change an edit's factor, let its `edit` job fail (a corrupt directions file), repair the pack: the rerun must
    redo the edit and everything after it. Snakemake deletes a failed job's outputs and does not rerun what follows
    a missing intermediate file (paste's segments are temp()), so the old video would look up to date; the workflow
    deletes the old outputs of every job a run redoes before the first job starts (common.smk onstart)."""
    wd = copy_workdir(done, tmp_path / "wd")
    for segment in (wd / "results" / "clip" / "paste").rglob("*.mp4"):
        segment.unlink()  # as temp() leaves them (the shared run kept them with --notemp)
    assert planned_jobs(wd) == []
    directions = Path(yaml.safe_load((wd / "config" / "config.yaml").read_text())["pack"]) / "directions.safetensors"
    good = directions.read_bytes()
    edit_config(wd, lambda c: c["edits"].update(older={"age": 4}))
    try:
        directions.write_bytes(good[:-8] + bytes(8))  # the tensor data: the header still reads, the sha256 fails
        proc = run_snakemake(wd, check=False)
    finally:
        directions.write_bytes(good)
    assert proc.returncode != 0 and "directions.safetensors is corrupt (sha256 mismatch)" in proc.stderr, proc.stderr
    assert not (wd / "results" / "clip" / "encode" / "stit" / "older.mp4").exists()
    jobs = planned_jobs(wd)
    redone = {r for r, wc in jobs if wc.get("edit") == "older"}
    assert {"edit", "stitching", "paste", "encode", "metrics"} <= redone, jobs


def test_lint_clean():
    exe = snakemake_cmd(REPO)[0]
    proc = subprocess.run([exe, "--lint", "-s", str(REPO / "Snakefile"), "-d", str(REPO)], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Congratulations" in proc.stdout + proc.stderr and "Lints for rule" not in proc.stdout + proc.stderr


def test_config_error_is_one_clear_message(tmp_path, cache, shared_data):
    wd = make_workdir(tmp_path / "wd", cache, shared_data)
    edit_config(wd, lambda c: c["pti"].update(epochs="many"))
    proc = run_snakemake(wd, "--dry-run", check=False)
    assert proc.returncode != 0
    msg = proc.stdout + proc.stderr
    assert "stitch error: config/config.yaml: pti.epochs: 'many' is not of type 'integer'" in msg
    assert "Traceback" not in msg  # more cases: tests/test_bad_inputs.py
    edit_config(wd, lambda c: (c["pti"].update(epochs=None), c.update(methods=["stit", "magic"])))
    proc = run_snakemake(wd, "--dry-run", check=False)
    assert proc.returncode != 0 and "'magic' is not one of" in proc.stdout + proc.stderr


def test_video_without_face_fails_clearly(tmp_path, cache, shared_data):
    from stitch.video import write_video

    wd = make_workdir(tmp_path / "wd", cache, shared_data)
    rng = np.random.default_rng(0)
    sky = np.linspace(80, 200, 160, dtype=np.float32)[:, None, None] * np.ones((160, 192, 3), np.float32)
    write_video(wd / "inputs" / "clip.mp4", ((sky + rng.normal(0, 3, sky.shape)).clip(0, 255).astype(np.uint8)
                                             for _ in range(10)), 25)
    proc = run_snakemake(wd, check=False)
    assert proc.returncode != 0
    assert "stitch error: no face track found" in proc.stderr + proc.stdout


def test_logs_show_progress(done):
    """Long loops leave progress lines (step/total, rate, ETA) in their rule's log, not only on the terminal."""
    logs = done / "results" / "clip" / "logs"
    for name, desc in [("pti.log", "pti"), ("invert_0000.log", "invert"), ("stitching_older_0000.log", "stitching")]:
        text = (logs / name).read_text()
        assert re.search(rf"stitch.progress: {desc}: (\d+)/\1 \(100\.0%\) [\d.]+ it/s, elapsed", text), (name, text[-800:])
        peak = re.search(r"stitch: peak RSS (\d+\.\d) MB$", text.strip())  # last line: the job's getrusage peak
        assert peak and 100 < float(peak.group(1)) < 4096, text[-300:]
    # detect reads its shard's frames as they decode (the shard's frame count is the total)
    text = (logs / "detect_0000.log").read_text()
    assert re.search(rf"stitch.progress: landmarks: {CLIP_FRAMES}/{CLIP_FRAMES} \(100\.0%\) [\d.]+ it/s", text), text[-800:]


def test_review_pages(done):
    """Rule review: the page links the run's own files (the source re-encoded by review_source: the input lies
    outside results/), embeds every edit's metrics, and the index links the page."""
    from stitch.video import probe

    res = done / "results"
    page = res / "clip" / "review.html"
    text = page.read_text()
    data = json.loads(re.search(r'id="review-data">(.*?)</script>', text, re.S).group(1))
    assert data["source"] == "review/source.mp4" and data["num_frames"] == CLIP_FRAMES
    src, inp = probe(res / "clip" / "review" / "source.mp4"), probe(done / "inputs" / "clip.mp4")
    assert (src.num_frames, src.fps, src.has_audio) == (inp.num_frames, inp.fps, True)
    assert set(data["clips"]["stit"]) == {"_recon", "older", "smile"} and data["edits"] == ["_recon", "older", "smile"]
    links = [data["source"], *(c[k] for c in data["clips"]["stit"].values() for k in ("video", "side_by_side") if c[k])]
    assert all((page.parent / link).is_file() for link in links), links
    older = pd.read_csv(res / "clip" / "metrics" / "stit" / "older.csv")
    curves = data["clips"]["stit"]["older"]["curves"]
    assert np.allclose(np.array(curves["age_edit"], float), older["age_edit"], rtol=1e-4, equal_nan=True)
    assert {p["key"] for p in data["panels"]} >= {"identity", "age", "p_male", "smile", "seam_mse"}
    assert "clip/review.html" in (res / "review.html").read_text()


def test_review_page_plays_real_encodes(done):
    """The run's page in headless Chromium: the H.264 + AAC files of rule encode play, with no console error."""
    import browser

    browser.require_chromium()
    d = browser.start_driver()
    try:
        d.get((done / "results" / "clip" / "review.html").as_uri())
        ready = "return Array.from(document.querySelectorAll('video.sync'))"
        browser.wait_for(d, ready + ".every(v => v.readyState >= 2)", "all videos loaded")
        d.find_element("id", "play").click()
        browser.wait_for(d, ready + ".every(v => v.currentTime > 0.5)", "every video playing past 0.5 s")
        d.find_element("id", "play").click()
        assert browser.console_errors(d) == []
        shot = REPO / "results" / "test_artifacts" / "review_workflow.png"
        shot.parent.mkdir(parents=True, exist_ok=True)
        d.save_screenshot(str(shot))
    finally:
        browser.stop_driver(d)
