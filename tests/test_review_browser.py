"""The review page (stitch.review) in a real browser: headless Chromium via Selenium, opened from disk (file://).

Inputs are made cheaply here: tiny H.264 mp4s written by ``stitch.video.write_video`` (the writer of rule encode)
and metrics CSVs in the real format (``stitch.metrics.per_frame_table`` plus the seam columns of
``stitch.seam``). The page must load without console errors, play every video, keep them within one frame of each
other after a seek and a frame step, swap the edited video with the strength slider at the same time, and move the
curve cursor with the playhead. A screenshot goes to the test's tmp dir and to ``results/test_artifacts/``.
The workflow-level check (rule review in the tiny workflow) is in ``tests/test_workflow.py``.
"""

from __future__ import annotations

import json
import re
import shutil
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

import browser
from stitch.atomic import write_json

REPO = Path(__file__).resolve().parents[1]
ARTIFACTS = REPO / "results" / "test_artifacts"
FPS = Fraction(24)
T = 48  # 2 s
SIZE = (48, 64)  # H, W
EDITS = ["_recon", "older", "smile"]
METHODS = ["stit", "e4e"]
SWEEP = [(0.0, "_recon"), (0.5, "older_x0p5"), (1.0, "older"), (2.0, "older_x2")]

VIDEOS_JS = "return Array.from(document.querySelectorAll('video.sync'))"
STATE_JS = VIDEOS_JS + ".map(v => ({src: v.getAttribute('src'), t: v.currentTime, paused: v.paused, " \
                       "seeking: v.seeking, ready: v.readyState}))"
SETTLED_JS = VIDEOS_JS + ".every(v => v.readyState >= 2 && !v.seeking)"


def make_video(path: Path, shade: int) -> None:
    """T frames of one colour with a bar that moves one column per frame (a visible playhead)."""
    from stitch.video import write_video

    frames = np.full((T, *SIZE, 3), shade, np.uint8)
    for t in range(T):
        frames[t, :, t % SIZE[1]] = 255 - shade
    write_video(path, iter(frames), FPS)


def make_metrics(path: Path, rng: np.random.Generator, strength: float) -> None:
    """A per-frame CSV with the columns of rule metrics (stitch.metrics.per_frame_table + seam columns)."""
    from stitch.metrics import per_frame_table

    found = np.ones(T, bool)
    found[[5, 6, 20]] = False  # frames without a face: NaN rows, breaks in the curves

    def describe(age):
        desc = rng.normal(size=(T, 128))
        desc[~found] = np.nan
        nan_where = lambda v: np.where(found, v, np.nan)
        return {"found": found, "desc": desc, "age": nan_where(age + rng.normal(0, 1, T)),
                "p_male": nan_where(rng.uniform(0.3, 0.7, T)), "smile": nan_where(rng.normal(0, 0.1, T))}

    df = per_frame_table(describe(np.full(T, 30.0)), describe(np.full(T, 30.0 + 8 * strength)), found,
                         {"psnr": rng.uniform(20, 30, T), "ssim": rng.uniform(0.5, 0.9, T)})
    df["seam_mse"] = np.where(found, rng.uniform(0, 50 * strength + 1, T), np.nan)
    df["seam_grad"] = np.where(found, rng.uniform(0, 5, T), np.nan)
    df["sharpness_ratio"] = rng.uniform(0.5, 1.0, T)
    df.to_csv(path, index=False, float_format="%.6g")


@pytest.fixture(scope="module")
def page(tmp_path_factory) -> Path:
    """results/clip/review.html over tiny videos and metrics, its source re-encoded by run_source."""
    from stitch.review import run, run_source

    root = tmp_path_factory.mktemp("review")
    res = root / "results" / "clip"
    for method in METHODS:
        (res / "encode" / method).mkdir(parents=True)
        (res / "metrics" / method).mkdir(parents=True)
    make_video(root / "input.mp4", 40)
    info = res / "frames" / "info.json"
    write_json(info, {"fps_num": FPS.numerator, "fps_den": FPS.denominator, "num_frames": T, "width": SIZE[1],
                      "height": SIZE[0], "has_audio": False})
    run_source(root / "input.mp4", info, root / "no_audio.wav", res / "review" / "source.mp4")
    rng = np.random.default_rng(0)
    names = ["_recon", "older", "smile", "older_x0p5", "older_x2"]
    for j, method in enumerate(METHODS):
        for i, name in enumerate(names):
            make_video(res / "encode" / method / f"{name}.mp4", 80 + 30 * i - 40 * j)
            make_metrics(res / "metrics" / method / f"{name}.csv", rng, {n: m for m, n in SWEEP}.get(name, 1.0))
            write_json(res / "metrics" / method / f"{name}.json", {"tl_id": 0.9 + 0.01 * i, "tg_id": 0.8, "id_dist": 0.3})
    per = lambda sub, ext: {m: {n: str(res / sub / m / f"{n}.{ext}") for n in names} for m in METHODS}
    layout = {"methods": METHODS, "edits": EDITS, "sweeps": {"older": [[m, n] for m, n in SWEEP]},
              "videos": per("encode", "mp4"), "metrics": per("metrics", "csv"),
              "side_by_side": {}, "index": str(root / "results" / "review.html")}
    out = res / "review.html"
    data = run("clip", info, res / "review" / "source.mp4", layout, out)
    assert data["source"] == "review/source.mp4" and data["index"] == "../review.html"
    return out


@pytest.fixture(scope="module")
def driver():
    browser.require_chromium()
    d = browser.start_driver()
    yield d
    browser.stop_driver(d)


def test_page_is_self_contained(page):
    text = page.read_text()
    assert "/*" + "DATA*/" not in text and "/*JS*/" not in text
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", text), "the page must not load anything remote"
    data = json.loads(re.search(r'id="review-data">(.*?)</script>', text, re.S).group(1))
    assert data["clips"]["stit"]["older_x2"]["video"] == "encode/stit/older_x2.mp4"
    curves = data["clips"]["stit"]["older"]["curves"]
    assert set(curves) >= {"id_cos", "age_src", "age_edit", "p_male_edit", "smile_edit", "seam_mse", "seam_grad"}
    assert curves["age_edit"][5] is None and len(curves["age_edit"]) == T
    assert [p["key"] for p in data["panels"]] == ["identity", "age", "p_male", "smile", "seam_grad", "seam_mse"]


def videos(d) -> list[dict]:
    return d.execute_script(STATE_JS)


def cursor_frames(d) -> list[int]:
    return d.execute_script("return Array.from(document.querySelectorAll('svg.curve .cursor'))"
                            ".map(l => Number(l.dataset.frame))")


def set_range(d, element_id: str, value: int) -> None:
    """Move a range input as a user would (value + input event)."""
    d.execute_script("const e = document.getElementById(arguments[0]); e.value = arguments[1];"
                     "e.dispatchEvent(new Event('input', {bubbles: true}));", element_id, value)


def assert_in_sync(d, frame: int) -> list[dict]:
    browser.wait_for(d, SETTLED_JS, "videos settled after the seek")
    vs = videos(d)
    times = [v["t"] for v in vs]
    assert max(times) - min(times) < 1 / FPS, vs
    assert all(int(t * FPS + 1e-3) == frame for t in times), (frame, vs)
    assert cursor_frames(d) and set(cursor_frames(d)) == {frame}
    return vs


def test_review_page_in_chromium(page, driver, tmp_path):
    d = driver
    d.get(page.as_uri())
    browser.wait_for(d, SETTLED_JS, "all videos loaded")
    assert browser.console_errors(d) == []
    vs = videos(d)
    assert len(vs) == 2 + len(EDITS)  # original, the picked edit, the grid of edits
    assert {v["src"] for v in vs} >= {"review/source.mp4", "encode/stit/older.mp4", "encode/stit/_recon.mp4"}
    assert len(d.find_elements("css selector", "svg.curve")) == 6

    # play: every video advances, and so does the curve cursor
    d.find_element("id", "play").click()
    browser.wait_for(d, VIDEOS_JS + ".every(v => v.currentTime > 0.5)", "every video playing past 0.5 s")
    assert not any(v["paused"] for v in videos(d))
    assert min(cursor_frames(d)) >= 12
    d.find_element("id", "play").click()  # pause
    browser.wait_for(d, VIDEOS_JS + ".every(v => v.paused)", "every video paused")

    # seek with the timeline, then one frame step: all videos within one frame of each other
    set_range(d, "timeline", 30)
    assert_in_sync(d, 30)
    d.find_element("id", "next").click()
    assert_in_sync(d, 31)
    d.find_element("id", "prev").click()
    d.find_element("id", "prev").click()
    assert_in_sync(d, 29)

    # the strength slider swaps the edited video to the sweep, at the same time; the curves follow
    edited = lambda: d.execute_script("const v = document.getElementById('edited');"
                                      "return [v.getAttribute('src'), v.dataset.clip, v.currentTime];")
    age_path = lambda: d.execute_script("return document.querySelector('.panel[data-key=age] path.edit')"
                                        ".getAttribute('d')")
    assert edited()[:2] == ["encode/stit/older.mp4", "older"]
    before = age_path()
    assert d.find_element("id", "strength").get_attribute("value") == "2"
    set_range(d, "strength", 3)
    browser.wait_for(d, "const v = document.getElementById('edited'); return v.getAttribute('src') === "
                        "'encode/stit/older_x2.mp4' && v.readyState >= 2 && !v.seeking && v.currentTime > 0",
                     "the x2 sweep video loaded")
    assert_in_sync(d, 29)
    assert edited()[1] == "older_x2" and age_path() != before
    assert "older_x2" in d.find_element("id", "strength-label").text

    # the edit picker; the curve cursor follows a click on a curve
    from selenium.webdriver.support.ui import Select

    Select(d.find_element("id", "edit")).select_by_value("smile")
    browser.wait_for(d, "return document.getElementById('edited').getAttribute('src') === 'encode/stit/smile.mp4'",
                     "the smile edit picked")
    assert not d.find_element("id", "strength-box").is_displayed()
    assert_in_sync(d, 29)
    set_range(d, "timeline", 3)
    assert_in_sync(d, 3)

    # the method picker: the other method's video of the same edit, the grid rebuilt, still in sync
    Select(d.find_element("id", "method")).select_by_value("e4e")
    browser.wait_for(d, "return document.getElementById('edited').getAttribute('src') === 'encode/e4e/smile.mp4'",
                     "the e4e method picked")
    assert_in_sync(d, 3)
    assert {v["src"] for v in videos(d)} == {"review/source.mp4", *(f"encode/e4e/{e}.mp4" for e in EDITS)}
    Select(d.find_element("id", "method")).select_by_value("stit")
    assert browser.console_errors(d) == []

    shot = tmp_path / "review.png"
    d.save_screenshot(str(shot))
    assert shot.stat().st_size > 10_000
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shutil.copy(shot, ARTIFACTS / "review_browser.png")


def test_missing_video_is_a_console_error(page, driver, tmp_path):
    """The check above can fail: a page whose edit file is gone reports it in the console and on the page."""
    broken = tmp_path / "results" / "clip"
    shutil.copytree(page.parent, broken)
    (broken / "encode" / "stit" / "smile.mp4").unlink()
    driver.get((broken / "review.html").as_uri())
    browser.wait_for(driver, "return document.getElementById('status').textContent", "the error on the page")
    errors = browser.console_errors(driver)
    assert any("smile.mp4" in e for e in errors), errors


def test_index_page(page):
    from stitch.review import run_index

    res = page.parent.parent
    summaries = {"clip": {m: {e: str(res / "clip" / "metrics" / m / f"{e}.json") for e in EDITS} for m in METHODS}}
    out = res / "review.html"
    run_index({"clip": page}, {"clip": res / "clip" / "frames" / "info.json"}, summaries, out)
    text = out.read_text()
    assert "href='clip/review.html'" in text and "48 frames at 24.000 fps" in text
    assert text.count("</tr>") == 1 + len(METHODS) * len(EDITS) and "0.91" in text and "seam_mse" not in text
