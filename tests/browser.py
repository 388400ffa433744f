"""Headless Chromium for tests of the review page (``tests/test_review_browser.py``, ``tests/test_workflow.py``).

Chromium and its driver come from the Debian packages ``chromium`` and ``chromium-driver``, installed with apt-get
when missing (root only), the way ``tests/slurm_cluster.py`` installs SLURM. Without them (not root, no apt-get,
the install failed, no selenium) the tests skip, except under ``CI=true`` where that is a failure.

Debian's chromium decodes H.264 (its ffmpeg is built with the proprietary codecs), so the page plays the mp4s of
``stitch.video.write_video`` (yuv420p, and yuv444p for odd sizes) as they are.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path

import pytest
from apt import Unavailable, apt_install

PACKAGES = ("chromium", "chromium-driver")
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--autoplay-policy=no-user-gesture-required", "--window-size=1400,1000")


def missing() -> list[str]:
    return [p for p in (CHROMIUM, CHROMEDRIVER) if not Path(p).exists()]


def ensure_installed(log=print) -> None:
    """apt-get install chromium chromium-driver when either binary is missing (needs root and apt-get)."""
    apt_install(PACKAGES, missing, log)


def require_chromium() -> None:
    """Install Chromium when needed; skip the test when impossible (fail under CI=true)."""
    try:
        import selenium  # noqa: F401
    except ImportError:
        reason = "selenium not installed (pip install -r requirements.txt)"
    else:
        try:
            ensure_installed()
            return
        except Unavailable as e:
            reason = str(e)
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail("CI=true but no headless Chromium: " + reason)
    pytest.skip(reason)


def start_driver():
    """A headless Chromium session with a fresh profile and the browser console log enabled."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    profile = tempfile.mkdtemp(prefix="stitch-chromium-")
    for flag in (*FLAGS, f"--user-data-dir={profile}"):
        opts.add_argument(flag)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=opts)
    driver.stitch_profile = profile
    return driver


def stop_driver(driver) -> None:
    driver.quit()
    shutil.rmtree(driver.stitch_profile, ignore_errors=True)


def console_errors(driver) -> list[str]:
    """Browser console entries at level SEVERE since the last call (errors, uncaught exceptions, failed loads)."""
    return [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]


def wait_for(driver, script: str, what: str, timeout: float = 120, *args):
    """Poll a JavaScript expression (``return ...``) until it is truthy; returns its value."""
    deadline = time.time() + timeout
    while True:
        value = driver.execute_script(script, *args)
        if value:
            return value
        if time.time() > deadline:
            raise AssertionError(f"browser: {what} not reached within {timeout:.0f} s (console: {driver.get_log('browser')})")
        time.sleep(0.1)
