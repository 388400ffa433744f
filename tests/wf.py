"""Helpers for tests that run the real workflow: a work dir with a tiny random pack around a real clip.

The clip is a 1.5 s cut (33 frames at 1350/61 fps, with audio) of ``../shared/data/videos/talk_1.mp4``; the
pack has random 32 px weights (``stitch.packs.make_random_pack``) so every stage runs in seconds. Both are built
once per test session and copied into each work dir.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
CLIP_FRAMES = 33
# no GPU here: the GPU rules (gpu=1, one torch thread each) run on the CPU, two at a time like the other jobs
GPU_SLOTS = 2

_CACHE: dict[str, Path] = {}


def cached_inputs(cache_dir: Path, shared_data: Path) -> tuple[Path, Path]:
    """(clip, pack) built once under ``cache_dir``."""
    if "clip" not in _CACHE:
        from stitch.packs import make_random_pack
        from stitch.video import cut_clip

        cache_dir.mkdir(parents=True, exist_ok=True)
        clip = cache_dir / "talk_1_cut.mp4"
        cut_clip(shared_data / "videos" / "talk_1.mp4", clip, 20, CLIP_FRAMES)
        make_random_pack(cache_dir / "tiny_pack", resolution=32)
        _CACHE["clip"], _CACHE["pack"] = clip, cache_dir / "tiny_pack"
    return _CACHE["clip"], _CACHE["pack"]


def make_workdir(
    tmp_path: Path,
    cache_dir: Path,
    shared_data: Path,
    edits: dict | None = None,
    extra_config: dict | None = None,
    samples_extra: dict | None = None,
) -> Path:
    """A Snakemake work dir: config/config.yaml, config/samples.tsv, inputs/clip.mp4 and pack/ (tiny)."""
    clip, pack = cached_inputs(cache_dir, shared_data)
    wd = Path(tmp_path)
    (wd / "config").mkdir(parents=True, exist_ok=True)
    (wd / "inputs").mkdir(exist_ok=True)
    shutil.copy(clip, wd / "inputs" / "clip.mp4")
    if not (wd / "pack").exists():
        shutil.copytree(pack, wd / "pack")
    cfg = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    cfg.update(
        samples="config/samples.tsv",
        results="results",
        pack=str(wd / "pack"),
        edits=edits or {"older": {"age": 8}},
        sweeps={},
    )
    cfg.update(extra_config or {})
    (wd / "config" / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    cols = {"sample": "clip", "path": "inputs/clip.mp4", **(samples_extra or {})}
    (wd / "config" / "samples.tsv").write_text("\t".join(cols) + "\n" + "\t".join(str(v) for v in cols.values()) + "\n")
    return wd


def snakemake_cmd(workdir: Path, *args: str) -> list[str]:
    """The command line that runs the repo's Snakefile in ``workdir`` on 2 cores, GPU_SLOTS GPU jobs at once."""
    exe = Path(sys.executable).with_name("snakemake")
    # extra args first: options like --resources take several values and would swallow targets after them
    return [str(exe), *args, "-s", str(REPO / "Snakefile"), "-d", str(workdir), "--cores", "2",
            "--resources", f"gpu={GPU_SLOTS}"]


def run_snakemake(workdir: Path, *args: str, check: bool = True, timeout: float = 1200) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(snakemake_cmd(workdir, *args), capture_output=True, text=True, timeout=timeout, env=env)
    if check and proc.returncode != 0:
        raise AssertionError(f"snakemake {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-6000:]}")
    return proc


def pasted_frames(workdir: Path, edit: str, method: str = "stit"):
    """(T, H, W, 3) uint8: the frames the paste stage encodes for ``edit`` of the clip, recomputed with the library
    (stitch.paste) from the run's stage files; the workflow itself keeps them only encoded (H.264 segments)."""
    import json

    import numpy as np

    from stitch.edit_range import load_active
    from stitch.paste import feather_radius, load_inputs, pasted_frames as paste_shard

    res = Path(workdir) / "results" / "clip"
    info = json.loads((res / "frames" / "info.json").read_text())
    crops = sorted((res / "recon").glob("*.npz") if edit == "_recon" else (res / "stitching" / edit).glob("*.npz"))
    assert method == "stit", "only stit's crops are located here"
    d = load_inputs(crops, res / "align" / "quads.npz", sorted((res / "masks").glob("*.npz")))  # all shards
    active = None if edit == "_recon" else load_active(res / "edit" / f"{edit}.json")
    return np.stack(list(paste_shard(Path(workdir) / "inputs" / "clip.mp4", info, d, 0,
                                     feather_radius(d["crops"].shape[-2]), active)))
