"""Installing a Debian service for a test (SLURM, Chromium): apt-get install on demand, as root."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Callable


class Unavailable(RuntimeError):
    """The packages cannot be provided on this machine (not root, no apt-get, install failed)."""


def apt_install(packages: tuple[str, ...], missing: Callable[[], list[str]], log=print) -> None:
    """``apt-get install packages`` when ``missing()`` lists anything (needs root and apt-get)."""
    if not missing():
        return
    if os.geteuid() != 0:
        raise Unavailable(f"{', '.join(missing())} missing and not root to apt-get install {' '.join(packages)}")
    if shutil.which("apt-get") is None:
        raise Unavailable(f"{', '.join(missing())} missing and no apt-get")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    cmd = ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *packages]
    t0 = time.time()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if proc.returncode != 0:  # a clean machine has no package lists yet
        subprocess.run(["apt-get", "update", "-qq"], capture_output=True, text=True, env=env)
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if proc.returncode != 0 or missing():
        raise Unavailable(f"apt-get install {' '.join(packages)} failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    log(f"installed {' '.join(packages)} in {time.time() - t0:.0f} s")
