"""Demo pack assembly (stitch.packs.demo, rule demo_pack), shipping (stitch.zoo.publish, rule zoo_publish) and the
config sections of the zoo rules (stitch.zoo.stage_config), on a tiny random pack."""

from __future__ import annotations

import json

import numpy as np
import pytest
from safetensors.torch import load_file

from stitch.errors import StitchError
from stitch.packs import Pack, make_random_pack, save_directions
from stitch.packs.demo import run as demo_pack
from stitch.zoo import stage_config
from stitch.zoo.publish import run as publish
from stitch.zoo.train import TrainConfig

PACK_FILES = ("pack.yaml", "generator.safetensors", "generator.json", "encoder.safetensors", "encoder.json",
              "directions.safetensors")


def verify_all(pack: Pack) -> set[str]:
    """Check every file the manifest lists (exists, sha256, configs); returns the keys listed as absent (None)."""
    for key, entry in pack.meta["files"].items():
        if entry:
            pack.path(key)
    return {key for key, entry in pack.meta["files"].items() if not entry}


@pytest.fixture
def built(tmp_path):
    """What demo_pack reads (tiny random weights, both phases' metrics, direction stats, the data npz) and its
    output folder."""
    src = tmp_path / "src"
    make_random_pack(src, resolution=32)
    for phase, steps in (("train", 7), ("adversarial", 3)):
        (src / f"{phase}.json").write_text(json.dumps({"steps": steps, "heldout_psnr": 20.0 + steps, "history": []}))
    (src / "stats.json").write_text(json.dumps({"n": 5}))
    np.savez(src / "utkface.npz", crops=np.zeros((1, 32, 32, 3), np.uint8), align_scale=0.7, size=32)
    out = tmp_path / "zoo" / "pack"
    demo_pack(src / "generator.safetensors", src / "encoder.safetensors", src / "train.json", src / "adversarial.json",
              src / "directions.safetensors", src / "stats.json", src / "utkface.npz", out / "pack.yaml")
    return src, out


def test_demo_pack_is_a_verified_pack(built):
    src, out = built
    pack = Pack.open(out)
    assert verify_all(pack) == {"bisenet", "lpips_backbone", "lpips_heads"}  # every listed file verifies
    assert pack.align_scale == 0.7 and pack.resolution == 32  # the data's alignment, the generator's size
    assert sorted(p.name for p in out.iterdir()) == sorted(PACK_FILES)
    assert (out / "generator.safetensors").read_bytes() == (src / "generator.safetensors").read_bytes()
    assert pack.meta["provenance"]["train_steps"] == 7 and pack.meta["provenance"]["adversarial_steps"] == 3
    assert "zoo_publish" in pack.meta["how_to_get"]


def test_publish_copies_changed_files_only(built, tmp_path):
    _, out = built
    dest, receipt = tmp_path / "resources" / "models" / "demo", tmp_path / "zoo" / "publish" / "receipt.json"
    files = [str(out / name) for name in PACK_FILES]
    first = publish({"pack": (files, str(dest))}, receipt)
    assert [e["copied"] for e in first["pack"]] == [True] * len(PACK_FILES)
    assert verify_all(Pack.open(dest)) == {"bisenet", "lpips_backbone", "lpips_heads"}  # a verified pack
    assert json.loads(receipt.read_text()) == first
    mtimes = {p.name: p.stat().st_mtime_ns for p in dest.iterdir()}

    dirs = load_file(out / "directions.safetensors")  # a rebuild that changed one file
    save_directions(out / "directions.safetensors", {**dirs, "age": dirs["age"] * 2})
    second = publish({"pack": (files, str(dest))}, receipt)
    assert {e["dest"].rsplit("/", 1)[1] for e in second["pack"] if e["copied"]} == {"directions.safetensors"}
    assert all(dest.joinpath(n).stat().st_mtime_ns == t for n, t in mtimes.items() if n != "directions.safetensors")
    assert (dest / "directions.safetensors").read_bytes() == (out / "directions.safetensors").read_bytes()
    assert not list(dest.glob(".*"))  # no temporary files left


def test_stage_config_reads_the_config_section():
    cfg = stage_config(TrainConfig, {"steps": 7, "batch": 4}, "train", threads=1)
    assert (cfg.steps, cfg.batch, cfg.threads, cfg.lr) == (7, 4, 1, TrainConfig.lr)
    assert stage_config(TrainConfig, None, "train").steps == TrainConfig.steps
    with pytest.raises(StitchError, match=r"config zoo\.train: unknown setting\(s\) stepz \(known: .*steps"):
        stage_config(TrainConfig, {"stepz": 7}, "train")
