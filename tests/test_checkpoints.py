"""Checkpoint loaders: NVIDIA pickles, rosinality / e4e .pt, Stitch's format; refusal of hostile files.

Every checkpoint is written here in its official layout: the NVIDIA pickle through stand-in
``torch_utils.persistence`` / ``dnnlib.util`` modules so it names the same globals as a real ``ffhq.pkl``;
rosinality / e4e state dicts with the official key names (see ``test_models.to_rosinality``).
"""

from __future__ import annotations

import argparse
import collections
import io
import os
import pickle
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import torch

from stitch.directions import load_direction
from stitch.errors import StitchError
from stitch.models import load_encoder, load_generator
from stitch.models.convert import convert_checkpoint
from stitch.models.loaders import load_checkpoint, load_e4e
from stitch.models.e4e import Encoder4Editing, EncoderConfig
from stitch.models.native import load_native, save_model
from stitch.models.stylegan2 import Generator, GeneratorConfig
from test_models import randomize_, ros_expected_keys, to_rosinality

REPO = Path(__file__).resolve().parents[1]
NV_CFG = GeneratorConfig(
    z_dim=32, w_dim=32, img_resolution=16, mapping_layers=2, channel_base=256, channel_max=32, conv_clamp=256.0
)
E4E_DEC = GeneratorConfig(z_dim=64, w_dim=64, img_resolution=32, mapping_layers=2, channel_base=1024, channel_max=64)
E4E_ENC = EncoderConfig(input_size=64, stage_channels=(16, 32, 48, 64), stage_units=(1, 2, 2, 1), num_ws=8, w_dim=64)
FAKE_SRC = "# training/networks.py source would be here; a real unpickle exec()s it\n"


def assert_one_line_error(exc: pytest.ExceptionInfo, path: Path, *words: str) -> str:
    msg = str(exc.value)
    assert "\n" not in msg and str(path) in msg, msg
    for w in words:
        assert w in msg, msg
    return msg


def same_state(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


# ----------------------------------------------------------------------------------------------------------
# NVIDIA StyleGAN2-ADA network pickle emulation


@pytest.fixture
def nv_modules(monkeypatch):
    """Stand-ins registered as ``torch_utils.persistence`` and ``dnnlib.util`` while pickling."""
    persistence = types.ModuleType("torch_utils.persistence")

    def _reconstruct_persistent_obj(meta):  # only its name matters for dumping
        raise AssertionError("the loader must never call the real reconstruct function")

    _reconstruct_persistent_obj.__module__ = "torch_utils.persistence"
    _reconstruct_persistent_obj.__qualname__ = "_reconstruct_persistent_obj"
    persistence._reconstruct_persistent_obj = _reconstruct_persistent_obj
    torch_utils = types.ModuleType("torch_utils")
    torch_utils.persistence = persistence
    util = types.ModuleType("dnnlib.util")

    class EasyDict(dict):
        pass

    EasyDict.__module__, EasyDict.__qualname__ = "dnnlib.util", "EasyDict"
    util.EasyDict = EasyDict
    dnnlib = types.ModuleType("dnnlib")
    dnnlib.util, dnnlib.EasyDict = util, EasyDict
    for name, mod in [("torch_utils", torch_utils), ("torch_utils.persistence", persistence), ("dnnlib", dnnlib),
                      ("dnnlib.util", util)]:
        monkeypatch.setitem(sys.modules, name, mod)
    return types.SimpleNamespace(reconstruct=_reconstruct_persistent_obj, EasyDict=EasyDict)


class Persistent:
    """Pickles exactly like a ``@persistence.persistent_class`` instance: ``_reconstruct_persistent_obj(meta)``."""

    def __init__(self, fn, meta):
        self.fn, self.meta = fn, meta

    def __reduce__(self):
        return (self.fn, (self.meta,), None)


def _hooks() -> dict:
    return {k: collections.OrderedDict() for k in ("_backward_hooks", "_forward_hooks", "_forward_pre_hooks",
                                                   "_state_dict_hooks", "_load_state_dict_pre_hooks")}


def nv_record(m: torch.nn.Module, nv, init_kwargs: dict | None = None, src: str = FAKE_SRC, drop: str | None = None):
    """A persistent record of module ``m`` with the same ``__dict__`` layout as NVIDIA's modules."""
    params = collections.OrderedDict((k, v) for k, v in m._parameters.items() if k != drop)
    state = {
        "training": False,
        "_parameters": params,
        "_buffers": collections.OrderedDict(m._buffers),
        "_non_persistent_buffers_set": set(),
        **_hooks(),
        "_modules": collections.OrderedDict((k, nv_record(c, nv, {}, src, drop)) for k, c in m._modules.items()),
        "_init_args": (),
        "_init_kwargs": init_kwargs or {},
    }
    for attr in ("z_dim", "c_dim", "w_dim", "img_resolution", "img_channels", "num_ws", "resolution", "up",
                 "in_channels", "activation", "conv_clamp", "padding", "num_conv", "num_torgb"):
        if attr in m.__dict__:
            state[attr] = m.__dict__[attr]
    if hasattr(m, "weight_gain"):
        state["weight_gain"] = np.float64(m.weight_gain)  # NVIDIA: lr_multiplier / np.sqrt(in_features)
    if hasattr(m, "bias_gain"):
        state["bias_gain"] = m.bias_gain
    meta = dict(type="class", version=6, module_src=src, class_name=type(m).__name__, state=state)
    return Persistent(nv.reconstruct, meta)


def nv_init_kwargs(cfg: GeneratorConfig, nv) -> dict:
    return {
        "z_dim": cfg.z_dim,
        "w_dim": cfg.w_dim,
        "mapping_kwargs": nv.EasyDict(num_layers=cfg.mapping_layers),
        "synthesis_kwargs": nv.EasyDict(channel_base=cfg.channel_base, channel_max=cfg.channel_max, num_fp16_res=4,
                                        conv_clamp=int(cfg.conv_clamp) if cfg.conv_clamp else None),
        "c_dim": 0,
        "img_resolution": cfg.img_resolution,
        "img_channels": cfg.img_channels,
    }


def write_nv_pickle(path: Path, g: Generator, nv, protocol: int = 3, src: str = FAKE_SRC, drop=None) -> Path:
    rec = nv_record(g, nv, nv_init_kwargs(g.cfg, nv), src, drop)
    d = torch.nn.Module()
    d.b4 = torch.nn.Linear(3, 2)
    aug = torch.nn.Module()
    aug.register_buffer("p", torch.zeros([]))
    data = {
        "G": rec,
        "D": nv_record(d, nv, {"c_dim": 0, "img_resolution": g.img_resolution}, src),
        "G_ema": rec,
        "augment_pipe": nv_record(aug, nv, {"xflip": 1}, src),
        "training_set_kwargs": nv.EasyDict(class_name="training.dataset.ImageFolderDataset", path="ffhq.zip",
                                           use_labels=False, max_size=70000, xflip=True, resolution=1024),
    }
    path.write_bytes(pickle.dumps(data, protocol=protocol))
    return path


@pytest.fixture
def nv_g() -> Generator:
    return randomize_(Generator(NV_CFG), seed=11)


@pytest.fixture
def nv_pkl(tmp_path, nv_modules, nv_g) -> Path:
    return write_nv_pickle(tmp_path / "ffhq.pkl", nv_g, nv_modules)


def pickle_globals(data: bytes) -> set[str]:
    """Globals a pickle names, found by unpickling with every global replaced by an inert dummy."""
    seen: set[str] = set()

    class Dummy(dict):
        def __init__(self, *a, **k):
            pass

        def __setstate__(self, state):
            pass

    class Recorder(pickle.Unpickler):
        def find_class(self, module, name):
            seen.add(f"{module}.{name}")
            return Dummy

    Recorder(io.BytesIO(data)).load()
    return seen


@pytest.mark.parametrize("protocol", [3, 4])
def test_nvidia_pickle_loads_exactly(tmp_path, nv_modules, nv_g, protocol):
    pkl = write_nv_pickle(tmp_path / f"ffhq{protocol}.pkl", nv_g, nv_modules, protocol=protocol)
    numpy_mod = type(np.float64(0)).__reduce__(np.float64(0))[0].__module__
    expected = {
        "torch_utils.persistence._reconstruct_persistent_obj", "dnnlib.util.EasyDict", "collections.OrderedDict",
        "torch._utils._rebuild_parameter", "torch._utils._rebuild_tensor_v2", "torch.storage._load_from_bytes",
        f"{numpy_mod}.scalar", "numpy.dtype",
    }
    if protocol < 4:
        expected.add("builtins.set")  # protocol 4 has an EMPTY_SET opcode instead
    assert pickle_globals(pkl.read_bytes()) == expected
    g = load_generator(pkl)
    assert g.cfg == NV_CFG  # conv_clamp, channels, mapping depth from init_kwargs
    assert same_state(g, nv_g)
    ws = torch.randn(2, g.num_ws, g.w_dim, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.equal(g.synthesis(ws), nv_g.synthesis(ws))
    info = load_checkpoint(pkl)
    assert info.format == "nvidia-pkl" and info.source_tensors == len(nv_g.state_dict())
    assert any("num_fp16_res" in n for n in info.notes)


def test_nvidia_pickle_missing_tensor_is_an_error(tmp_path, nv_modules, nv_g):
    pkl = write_nv_pickle(tmp_path / "cut.pkl", nv_g, nv_modules, drop="noise_strength")
    with pytest.raises(StitchError) as e:
        load_generator(pkl)
    assert_one_line_error(e, pkl, "missing", "noise_strength")


def test_tampered_nvidia_records(tmp_path, nv_modules, nv_g):
    kw = nv_init_kwargs(NV_CFG, nv_modules)
    cases = {
        "params_list": {"_parameters": [1, 2], "_init_kwargs": kw},
        "bad_kwargs": {"_init_kwargs": {**kw, "c_dim": 10}},
        "fork_option": {"_init_kwargs": {**kw, "synthesis_kwargs": {"architecture": "resnet"}}},
        "no_kwargs": {"_init_kwargs": 5},
    }
    for name, state in cases.items():
        meta = dict(type="class", version=6, module_src=FAKE_SRC, class_name="Generator", state=state)
        pkl = tmp_path / f"{name}.pkl"
        pkl.write_bytes(pickle.dumps({"G_ema": Persistent(nv_modules.reconstruct, meta)}))
        with pytest.raises(StitchError) as e:
            load_generator(pkl)
        assert_one_line_error(e, pkl)
    meta = dict(type="class", version=6, module_src=FAKE_SRC, class_name="Discriminator", state={})
    pkl = tmp_path / "d.pkl"
    pkl.write_bytes(pickle.dumps({"G_ema": Persistent(nv_modules.reconstruct, meta)}))
    with pytest.raises(StitchError) as e:
        load_generator(pkl)
    assert_one_line_error(e, pkl, "Discriminator")


def test_nvidia_pickle_wrong_kind(tmp_path, nv_pkl):
    with pytest.raises(StitchError) as e:
        load_encoder(nv_pkl)
    assert_one_line_error(e, nv_pkl, "expected an e4e encoder")
    other = tmp_path / "notnet.pkl"
    other.write_bytes(pickle.dumps({"a": 1, "b": [1, 2]}))
    with pytest.raises(StitchError) as e:
        load_generator(other)
    assert_one_line_error(e, other, "G_ema")


# ----------------------------------------------------------------------------------------------------------
# Hostile files


def _marker(tmp_path: Path) -> Path:
    return tmp_path / "pwned_marker"


class _OsSystem:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch '{self.marker}'",))


class _Exec:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        import builtins

        return (builtins.exec, (f"open({str(self.marker)!r}, 'w').write('x')",))


class _Popen:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (subprocess.Popen, (["touch", str(self.marker)],))


@pytest.mark.parametrize("payload,glob", [(_OsSystem, "system"), (_Exec, "builtins.exec"), (_Popen, "subprocess.Popen")])
def test_pickle_running_a_command_is_refused(tmp_path, payload, glob):
    marker = _marker(tmp_path)
    pkl = tmp_path / "evil.pkl"
    pkl.write_bytes(pickle.dumps({"G_ema": payload(marker)}, protocol=4))
    with pytest.raises(StitchError) as e:
        load_generator(pkl)
    assert_one_line_error(e, pkl, "refused", glob)
    assert not marker.exists()
    with pytest.raises(StitchError):
        convert_checkpoint(pkl, tmp_path / "out")
    assert not marker.exists()


def test_command_payload_is_live_under_a_plain_unpickle(tmp_path):
    """Control: the same file does run its command under plain ``pickle.load`` (so the test above means something)."""
    marker = _marker(tmp_path)
    pkl = tmp_path / "evil.pkl"
    pkl.write_bytes(pickle.dumps({"G_ema": _OsSystem(marker)}, protocol=4))
    subprocess.run([sys.executable, "-c", f"import pickle; pickle.load(open({str(pkl)!r}, 'rb'))"], check=True)
    assert marker.exists()


def test_persistence_module_src_is_never_executed(tmp_path, nv_modules, nv_g):
    marker = _marker(tmp_path)
    src = f"open({str(marker)!r}, 'w').write('module_src ran')\n" + FAKE_SRC
    pkl = write_nv_pickle(tmp_path / "src.pkl", nv_g, nv_modules, src=src)
    # Control: NVIDIA's own _reconstruct_persistent_obj exec()s module_src; a stand-in that does the same runs it.
    code = (
        "import sys, types, pickle\n"
        "for n in ('torch_utils', 'dnnlib'): sys.modules[n] = types.ModuleType(n)\n"
        "p = types.ModuleType('torch_utils.persistence'); sys.modules[p.__name__] = p\n"
        "def _reconstruct_persistent_obj(meta):\n    exec(meta['module_src'], {})\n    return None\n"
        "p._reconstruct_persistent_obj = _reconstruct_persistent_obj\n"
        "u = types.ModuleType('dnnlib.util'); sys.modules[u.__name__] = u\n"
        "u.EasyDict = type('EasyDict', (dict,), {})\n"
        f"pickle.load(open({str(pkl)!r}, 'rb'))\n"
    )
    g = load_generator(pkl)  # loads fine ...
    assert not marker.exists()  # ... without running module_src
    assert same_state(g, nv_g)
    subprocess.run([sys.executable, "-c", code], check=True)
    assert marker.exists()


def test_hostile_tensor_storage_blob_is_refused(tmp_path):
    marker = _marker(tmp_path)
    blob = io.BytesIO()
    torch.save({"x": _OsSystem(marker)}, blob, _use_new_zipfile_serialization=False)

    class EvilStorage:
        def __reduce__(self):
            return (torch.storage._load_from_bytes, (blob.getvalue(),))

    pkl = tmp_path / "storage.pkl"
    pkl.write_bytes(pickle.dumps({"G_ema": EvilStorage()}, protocol=3))
    with pytest.raises(StitchError) as e:
        load_generator(pkl)
    assert_one_line_error(e, pkl, "system")
    assert not marker.exists()


@pytest.mark.parametrize("payload", [_OsSystem, _Exec, _Popen])
def test_torch_checkpoint_running_a_command_is_refused(tmp_path, payload):
    marker = _marker(tmp_path)
    pt = tmp_path / "evil.pt"
    torch.save({"g_ema": {"style.1.weight": torch.zeros(2, 2)}, "args": payload(marker)}, pt)
    with pytest.raises(StitchError) as e:
        load_generator(pt)
    assert_one_line_error(e, pt, "refused")
    assert not marker.exists()


def test_truncated_and_garbage_files(tmp_path, nv_pkl):
    data = nv_pkl.read_bytes()
    cut = tmp_path / "truncated.pkl"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(StitchError) as e:
        load_generator(cut)
    assert_one_line_error(e, cut)

    g = randomize_(Generator(E4E_DEC), seed=3)
    pt = tmp_path / "ros.pt"
    torch.save({"g_ema": to_rosinality(g)}, pt)
    cut_pt = tmp_path / "truncated.pt"
    cut_pt.write_bytes(pt.read_bytes()[: pt.stat().st_size // 2])
    with pytest.raises(StitchError) as e:
        load_generator(cut_pt)
    assert_one_line_error(e, cut_pt, "corrupt")

    garbage = tmp_path / "garbage.pkl"
    garbage.write_bytes(b"GARBAGE!" + np.random.default_rng(0).bytes(4096))
    with pytest.raises(StitchError) as e:
        load_generator(garbage)
    assert_one_line_error(e, garbage, "not a recognised checkpoint")

    fake_pickle = tmp_path / "garbage2.pkl"
    fake_pickle.write_bytes(b"\x80\x04" + np.random.default_rng(1).bytes(4096))
    with pytest.raises(StitchError) as e:
        load_generator(fake_pickle)
    assert_one_line_error(e, fake_pickle)

    cut_st = tmp_path / "cut.safetensors"
    save_model(g, cut_st)
    cut_st.write_bytes(cut_st.read_bytes()[:-100])
    with pytest.raises(StitchError) as e:
        load_generator(cut_st)
    assert_one_line_error(e, cut_st)

    with pytest.raises(StitchError) as e:
        load_generator(tmp_path / "nope.pkl")
    assert_one_line_error(e, tmp_path / "nope.pkl", "not found")


# ----------------------------------------------------------------------------------------------------------
# rosinality


def test_rosinality_official_family_with_args(tmp_path):
    cfg = GeneratorConfig(z_dim=64, w_dim=64, img_resolution=8, mapping_layers=2, channel_base=32768, channel_max=512)
    g = randomize_(Generator(cfg), seed=5)
    sd = to_rosinality(g)
    assert set(sd) == ros_expected_keys(8, 2)
    pt = tmp_path / "550000.pt"
    args = argparse.Namespace(size=8, latent=64, n_mlp=2, channel_multiplier=2, batch=16, r1=10.0)
    torch.save({"g_ema": sd, "g": sd, "latent_avg": g.w_avg.clone(), "args": args}, pt)
    g2 = load_generator(pt)
    assert g2.cfg == cfg
    ws = torch.randn(2, g.num_ws, 64, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        assert (g2.synthesis(ws) - g.synthesis(ws)).abs().max() <= 1e-5
    assert torch.equal(g2.w_avg, g.w_avg)
    assert same_state(g2, g)


def test_rosinality_without_args_or_latent_avg(tmp_path, caplog):
    g = randomize_(Generator(E4E_DEC), seed=6)
    pt = tmp_path / "ros.pt"
    torch.save({"g_ema": to_rosinality(g)}, pt)
    with caplog.at_level("INFO", logger="stitch.models.rosinality"):
        g2 = load_generator(pt)
    assert g2.cfg == E4E_DEC  # channel_base/max inferred from the shapes
    assert "w_avg" in caplog.text and "10000" in caplog.text
    with torch.no_grad():
        z = torch.randn(10_000, 64, generator=torch.Generator().manual_seed(0))
        expect = g.mapping(z)[:, 0].mean(0)
        ws = torch.randn(1, g.num_ws, 64)
        assert (g2.synthesis(ws) - g.synthesis(ws)).abs().max() <= 1e-5
    assert torch.allclose(g2.w_avg, expect, atol=1e-5)
    bare = tmp_path / "bare.pt"  # a bare g_ema state dict works too
    torch.save(to_rosinality(g), bare)
    assert load_generator(bare).cfg == E4E_DEC


def test_rosinality_leftover_and_missing_keys(tmp_path):
    g = randomize_(Generator(E4E_DEC), seed=7)
    sd = to_rosinality(g)
    extra = tmp_path / "extra.pt"
    torch.save({"g_ema": {**sd, "convs.0.mystery": torch.zeros(3)}}, extra)
    with pytest.raises(StitchError) as e:
        load_generator(extra)
    assert_one_line_error(e, extra, "convs.0.mystery")
    sd.pop("noises.noise_3")
    missing = tmp_path / "missing.pt"
    torch.save({"g_ema": sd}, missing)
    with pytest.raises(StitchError) as e:
        load_generator(missing)
    assert_one_line_error(e, missing, "noises.noise_3")
    with pytest.raises(StitchError) as e:
        load_encoder(extra.with_name("missing.pt"))
    assert_one_line_error(e, missing)
    sd = to_rosinality(g)
    sd["convs.1.conv.weight"] = sd["convs.1.conv.weight"][0, 0]  # tampered shape
    bad = tmp_path / "badshape.pt"
    torch.save({"g_ema": sd}, bad)
    with pytest.raises(StitchError) as e:
        load_generator(bad)
    assert_one_line_error(e, bad)
    enc_only = tmp_path / "gen.pt"
    torch.save({"g_ema": to_rosinality(g)}, enc_only)
    with pytest.raises(StitchError) as e:
        load_encoder(enc_only)
    assert_one_line_error(e, enc_only, "expected an e4e encoder")


# ----------------------------------------------------------------------------------------------------------
# e4e


def write_e4e(path: Path, enc: Encoder4Editing, g: Generator, latent_avg: torch.Tensor, opts) -> Path:
    sd = {f"encoder.{k}": v for k, v in enc.state_dict().items() if k != "latent_avg"}
    sd.update({f"decoder.{k}": v for k, v in to_rosinality(g).items()})
    torch.save({"state_dict": sd, "opts": opts, "latent_avg": latent_avg}, path)
    return path


def _e4e_models(seed: int = 8):
    g = randomize_(Generator(E4E_DEC), seed=seed)
    enc = randomize_(Encoder4Editing(E4E_ENC), seed=seed + 1, fan_in=True)
    with torch.no_grad():
        enc.latent_avg.copy_(g.w_avg.expand(8, 64))  # e4e: latent_avg = decoder mean latent, repeated
    return enc, g


E4E_OPTS = {"encoder_type": "Encoder4Editing", "stylegan_size": 32, "start_from_latent_avg": True,
            "checkpoint_path": "e4e_ffhq_encode.pt", "lpips_type": "alex"}


@pytest.mark.parametrize("avg_shape,opts_kind", [("rows", "dict"), ("vector", "namespace")])
def test_e4e_checkpoint(tmp_path, avg_shape, opts_kind):
    enc, g = _e4e_models()
    la = enc.latent_avg.clone() if avg_shape == "rows" else g.w_avg.clone()
    opts = dict(E4E_OPTS) if opts_kind == "dict" else argparse.Namespace(**E4E_OPTS)
    pt = write_e4e(tmp_path / "e4e.pt", enc, g, la, opts)
    enc2, g2 = load_e4e(pt)
    assert enc2.cfg == E4E_ENC and g2.cfg == E4E_DEC
    assert same_state(enc2, enc) and same_state(g2, g)
    x = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(2)) * 2 - 1
    with torch.no_grad():
        codes = enc2(x)
        assert codes.shape == (1, 8, 64) and torch.equal(codes, enc(x))
    assert torch.equal(load_encoder(pt).latent_avg, enc.latent_avg)
    assert same_state(load_generator(pt), g)


def test_psp_encoder_is_refused(tmp_path):
    enc, g = _e4e_models()
    pt = write_e4e(tmp_path / "psp.pt", enc, g, enc.latent_avg, {**E4E_OPTS, "encoder_type": "GradualStyleEncoder"})
    with pytest.raises(StitchError) as e:
        load_encoder(pt)
    assert_one_line_error(e, pt, "GradualStyleEncoder")


# ----------------------------------------------------------------------------------------------------------
# Stitch format and conversion


def test_native_round_trip_is_bit_exact(tmp_path, nv_g):
    p = save_model(nv_g, tmp_path / "g.safetensors")
    g2 = load_generator(p)
    assert g2.cfg == nv_g.cfg and same_state(g2, nv_g)
    ws = torch.randn(1, nv_g.num_ws, nv_g.w_dim)
    with torch.no_grad():
        assert torch.equal(g2.synthesis(ws), nv_g.synthesis(ws))
    with pytest.raises(StitchError) as e:
        load_encoder(p)
    assert_one_line_error(e, p, "expected a encoder")


def test_convert_nvidia_pickle(tmp_path, nv_pkl, nv_g):
    lines: list[str] = []
    out = convert_checkpoint(nv_pkl, tmp_path / "conv", echo=lines.append)
    text = "\n".join(lines)
    for word in ("16 px", "num_ws 6", "w_dim 32", "mapping 2 layers", "conv_clamp 256.0", "parameters", "all used"):
        assert word in text, text
    assert out["format"] == "nvidia-pkl"
    g = load_generator(tmp_path / "conv")
    assert same_state(g, nv_g)
    assert not (tmp_path / "conv" / "encoder.safetensors").exists()


def test_convert_script_on_e4e(tmp_path):
    enc, g = _e4e_models(seed=12)
    pt = write_e4e(tmp_path / "e4e_ffhq_encode.pt", enc, g, enc.latent_avg.clone(), dict(E4E_OPTS))
    dst = tmp_path / "converted"
    r = subprocess.run([sys.executable, str(REPO / "scripts" / "convert_checkpoint.py"), str(pt), str(dst)],
                       capture_output=True, text=True, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "32 px" in r.stdout and "num_ws 8" in r.stdout and "encoder:" in r.stdout, r.stdout
    for name in ("generator", "encoder"):
        assert (dst / f"{name}.safetensors").is_file() and (dst / f"{name}.json").is_file()
    enc2, g2 = load_e4e(dst)
    assert same_state(enc2, enc) and same_state(g2, g)
    assert isinstance(load_native(dst / "encoder.safetensors", kind="encoder"), Encoder4Editing)
    bad = tmp_path / "bad.pt"
    torch.save({"g_ema": {**to_rosinality(g), "leftover.x": torch.zeros(1)}}, bad)
    r = subprocess.run([sys.executable, str(REPO / "scripts" / "convert_checkpoint.py"), str(bad), str(dst / "b")],
                       capture_output=True, text=True)
    assert r.returncode == 1 and "leftover.x" in r.stderr and "Traceback" not in r.stderr


# ----------------------------------------------------------------------------------------------------------
# Directions


def test_stit_directions_load(shared_data):
    files = sorted((shared_data / "stit_directions").glob("*.npy"))
    assert len(files) == 16
    for f in files:
        d = load_direction(f)
        assert d.shape == (18, 512) and d.dtype == torch.float32
        assert torch.equal(d, d[:1].expand(18, 512))  # STIT's W directions are stored as 18 identical rows
        assert load_direction(f, num_ws=18).shape == (18, 512)
        raw = np.load(f)
        assert np.allclose(d.numpy(), raw, atol=1e-6)


def test_direction_shapes_and_errors(tmp_path):
    v = np.random.default_rng(0).standard_normal(512)
    for name, arr in [("vec", v), ("row", v[None])]:
        p = tmp_path / f"{name}.npy"
        np.save(p, arr)
        d = load_direction(p, num_ws=18)
        assert d.shape == (18, 512) and torch.allclose(d[7], torch.from_numpy(v).float())
        assert load_direction(p).shape == (1, 512)
    bad = tmp_path / "bad.npy"
    np.save(bad, np.zeros((3, 512)))
    with pytest.raises(StitchError) as e:
        load_direction(bad, num_ws=18)
    assert_one_line_error(e, bad, "num_ws=18")
    cube = tmp_path / "cube.npy"
    np.save(cube, np.zeros((2, 3, 4)))
    with pytest.raises(StitchError) as e:
        load_direction(cube)
    assert_one_line_error(e, cube, "shape")
    obj = tmp_path / "obj.npy"
    np.save(obj, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(StitchError) as e:
        load_direction(obj)
    assert_one_line_error(e, obj)
