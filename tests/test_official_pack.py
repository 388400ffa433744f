"""The `ffhq_pack` stage (stitch.packs.ffhq): the ffhq pack built from files in the official formats (tiny stand-ins
written here)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from stitch.errors import StitchError
from stitch.packs import Pack
from stitch.packs.ffhq import OFFICIAL_FILES, STIT_DIRECTIONS, build_ffhq_pack
from test_checkpoints import E4E_OPTS, _e4e_models, nv_modules, write_e4e, write_nv_pickle  # noqa: F401


def write_official_raw(raw, nv, with_optional=False):
    enc, g = _e4e_models()
    raw.mkdir(parents=True)
    write_nv_pickle(raw / "ffhq.pkl", g, nv)
    write_e4e(raw / "e4e_ffhq_encode.pt", enc, g, enc.latent_avg.clone(), dict(E4E_OPTS))
    (raw / "w_directions").mkdir()
    rng = np.random.default_rng(0)
    for d in STIT_DIRECTIONS:  # STIT stores (num_ws, w_dim) float64 with identical rows
        np.save(raw / "w_directions" / f"{d}.npy", np.repeat(rng.normal(size=(1, g.w_dim)), g.num_ws, axis=0))
    return enc, g


def test_missing_files_listed_with_destination(tmp_path):
    with pytest.raises(StitchError) as e:
        build_ffhq_pack(tmp_path / "ffhq", download=False)
    msg = str(e.value)
    required = [f for f in OFFICIAL_FILES if f.required]
    assert f"needs {len(required)} file(s)" in msg
    for f in required:
        assert str(tmp_path / "ffhq" / "raw" / f.file) in msg and f.page in msg
    assert "79999_iter.pth" not in msg  # optional files are not demanded
    assert "rerun `snakemake ffhq_pack`" in msg  # names the rule that builds the pack
    assert not (tmp_path / "ffhq" / "pack.yaml").exists()


def test_pack_from_official_formats(tmp_path, nv_modules):  # noqa: F811
    root = tmp_path / "ffhq"
    enc, g = write_official_raw(root / "raw", nv_modules)
    build_ffhq_pack(root, download=False)
    pack = Pack.open(root)
    assert pack.meta["resolution"] == g.img_resolution and pack.meta["num_ws"] == g.num_ws
    assert set(pack.directions) == set(STIT_DIRECTIONS)
    assert pack.meta["files"]["bisenet"] is None and pack.meta["files"]["lpips_heads"] is None
    G2, E2 = pack.generator(), pack.encoder()
    ws = torch.randn(2, g.num_ws, g.w_dim, generator=torch.Generator().manual_seed(1))
    x = torch.rand(1, 3, enc.cfg.input_size, enc.cfg.input_size) * 2 - 1
    with torch.no_grad():
        assert torch.equal(G2.synthesis(ws), g.synthesis(ws))
        assert torch.equal(E2(x), enc(x))
    d = np.load(root / "raw" / "w_directions" / "age.npy")
    np.testing.assert_allclose(pack.directions["age"].numpy(), d.astype(np.float32))
