"""BiSeNet face parsing (CelebAMask-HQ, 19 classes) in the layout of zllrunning/face-parsing.PyTorch.

The official checkpoint ``79999_iter.pth`` is a plain ``state_dict`` of ``BiSeNet(n_classes=19)``:

* ``cp.resnet.*`` -- a ResNet-18 trunk without ``fc`` (``conv1``, ``bn1``, ``layer1..4.{0,1}.{conv1,bn1,conv2,bn2}``,
  ``layer{2,3,4}.0.downsample.{0,1}``),
* ``cp.arm16.*`` / ``cp.arm32.*`` (attention refinement: ``conv.{conv,bn}``, ``conv_atten``, ``bn_atten``),
  ``cp.conv_head32.*``, ``cp.conv_head16.*``, ``cp.conv_avg.*`` (each ``conv`` + ``bn``),
* no spatial path (``sp`` was deleted upstream: the 1/8 ResNet feature replaces it),
* ``ffm.{convblk.{conv,bn},conv1,conv2}``, and the heads ``conv_out``, ``conv_out16``, ``conv_out32``
  (each ``conv.{conv,bn}`` + ``conv_out``).

Reference preprocessing: RGB resized to 512x512 (bilinear), ``/255``, ImageNet mean/std; labels are the argmax of
the main output. Label ids: 0 background, 1 skin, 2/3 brows, 4/5 eyes, 6 glasses, 7/8 ears, 9 earring, 10 nose,
11 mouth, 12/13 lips, 14 neck, 15 necklace, 16 cloth, 17 hair, 18 hat.

This module also holds the small helpers the other auxiliary loaders share: reading a user-supplied torch
checkpoint safely (``weights_only=True``) and copying it into a module with a strict, one-line-error key check.
"""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from stitch.errors import StitchError
from stitch.models.native import load_state_strict

N_CLASSES = 19
INPUT_SIZE = 512
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
#: Labels that are not part of the face foreground: background, cloth, hat.
FOREGROUND_EXCLUDE = (0, 16, 18)
LABEL_NAMES = (
    "background", "skin", "l_brow", "r_brow", "l_eye", "r_eye", "eye_g", "l_ear", "r_ear", "ear_r",
    "nose", "mouth", "u_lip", "l_lip", "neck", "neck_l", "cloth", "hair", "hat",
)

# ---------------------------------------------------------------------------------------------------------
# Shared checkpoint helpers (also used by stitch.models.lpips and stitch.models.face_id)

_OPTIONAL_SUFFIXES = ("num_batches_tracked",)  # absent from checkpoints written by torch < 0.4.1


def _first_line(e: BaseException) -> str:
    s = str(e).strip().splitlines()
    return s[0] if s else type(e).__name__


def read_state_dict(path: str | Path, what: str) -> dict[str, torch.Tensor]:
    """Tensors of a torch checkpoint (``weights_only=True``) or ``.safetensors`` file, as a flat dict.

    Accepts a plain ``state_dict`` or one wrapped as ``{"state_dict": ...}`` / ``{"model": ...}``, and strips a
    DataParallel ``module.`` prefix. ``what`` names the weights in error messages.
    """
    p = Path(path)
    if not p.is_file():
        raise StitchError(f"{what} weights not found: {p} (supply the official file; nothing is downloaded)")
    try:
        with open(p, "rb") as f:
            head = f.read(16)
        if p.suffix == ".safetensors" or (len(head) >= 9 and head[8:9] == b"{" and not head.startswith(b"PK")):
            from safetensors.torch import load_file

            obj = load_file(str(p))
        else:
            obj = torch.load(p, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        raise StitchError(f"{p}: not a plain {what} state_dict (refused by weights_only loading: {_first_line(e)})") from None
    except (RuntimeError, EOFError, OSError, ValueError, zipfile.BadZipFile) as e:
        raise StitchError(f"{p}: unreadable or corrupt {what} checkpoint ({_first_line(e)})") from None
    if isinstance(obj, dict):
        for wrapper in ("state_dict", "model", "params"):
            if wrapper in obj and isinstance(obj[wrapper], dict) and not any(torch.is_tensor(v) for v in obj.values()):
                obj = obj[wrapper]
                break
    if not isinstance(obj, dict) or not obj or not all(isinstance(k, str) and torch.is_tensor(v) for k, v in obj.items()):
        raise StitchError(f"{p}: expected a {what} state_dict (a dict of name -> tensor), got {type(obj).__name__}")
    if all(k.startswith("module.") for k in obj):
        obj = {k[len("module."):]: v for k, v in obj.items()}
    return obj


def load_state_official(
    model: nn.Module, state: dict[str, torch.Tensor], source: str | Path, what: str | None = None
) -> None:
    """Copy ``state`` into ``model`` by exact key; missing/unexpected keys or wrong shapes are a one-line
    :class:`StitchError` naming ``source``. BatchNorm ``num_batches_tracked`` may be absent (old torch)."""
    load_state_strict(model, state, source, what or type(model).__name__, _OPTIONAL_SUFFIXES)


# ---------------------------------------------------------------------------------------------------------
# Architecture


class ConvBNReLU(nn.Module):
    def __init__(self, cin: int, cout: int, ks: int = 3, stride: int = 1, padding: int = 1) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, ks, stride, padding, bias=False)
        self.bn = nn.BatchNorm2d(cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv(x)))


class BasicBlock(nn.Module):
    """ResNet basic block (post-activation), downsample = 1x1 conv + BN when the shape changes."""

    def __init__(self, cin: int, cout: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample = None
        if cin != cout or stride != 1:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        r = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        s = x if self.downsample is None else self.downsample(x)
        return F.relu(s + r)


def _stage(cin: int, cout: int, stride: int) -> nn.Sequential:
    return nn.Sequential(BasicBlock(cin, cout, stride), BasicBlock(cout, cout, 1))


class Resnet18(nn.Module):
    """ResNet-18 trunk returning the 1/8, 1/16 and 1/32 features (no classifier)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.layer1 = _stage(64, 64, 1)
        self.layer2 = _stage(64, 128, 2)
        self.layer3 = _stage(128, 256, 2)
        self.layer4 = _stage(256, 512, 2)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x = self.layer1(self.maxpool(F.relu(self.bn1(self.conv1(x)))))
        f8 = self.layer2(x)
        f16 = self.layer3(f8)
        f32 = self.layer4(f16)
        return f8, f16, f32


class AttentionRefinementModule(nn.Module):
    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.conv = ConvBNReLU(cin, cout, 3, 1, 1)
        self.conv_atten = nn.Conv2d(cout, cout, 1, bias=False)
        self.bn_atten = nn.BatchNorm2d(cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feat = self.conv(x)
        att = torch.sigmoid(self.bn_atten(self.conv_atten(F.adaptive_avg_pool2d(feat, 1))))
        return feat * att


class ContextPath(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.resnet = Resnet18()
        self.arm16 = AttentionRefinementModule(256, 128)
        self.arm32 = AttentionRefinementModule(512, 128)
        self.conv_head32 = ConvBNReLU(128, 128, 3, 1, 1)
        self.conv_head16 = ConvBNReLU(128, 128, 3, 1, 1)
        self.conv_avg = ConvBNReLU(512, 128, 1, 1, 0)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        f8, f16, f32 = self.resnet(x)
        avg = self.conv_avg(F.adaptive_avg_pool2d(f32, 1))
        s32 = self.arm32(f32) + F.interpolate(avg, size=f32.shape[2:], mode="nearest")
        up32 = self.conv_head32(F.interpolate(s32, size=f16.shape[2:], mode="nearest"))
        s16 = self.arm16(f16) + up32
        up16 = self.conv_head16(F.interpolate(s16, size=f8.shape[2:], mode="nearest"))
        return f8, up16, up32


class FeatureFusionModule(nn.Module):
    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.convblk = ConvBNReLU(cin, cout, 1, 1, 0)
        self.conv1 = nn.Conv2d(cout, cout // 4, 1, bias=False)
        self.conv2 = nn.Conv2d(cout // 4, cout, 1, bias=False)

    def forward(self, fsp: torch.Tensor, fcp: torch.Tensor) -> torch.Tensor:
        feat = self.convblk(torch.cat([fsp, fcp], dim=1))
        att = torch.sigmoid(self.conv2(F.relu(self.conv1(F.adaptive_avg_pool2d(feat, 1)))))
        return feat * att + feat


class BiSeNetOutput(nn.Module):
    def __init__(self, cin: int, cmid: int, n_classes: int) -> None:
        super().__init__()
        self.conv = ConvBNReLU(cin, cmid, 3, 1, 1)
        self.conv_out = nn.Conv2d(cmid, n_classes, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv_out(self.conv(x))


class BiSeNet(nn.Module):
    """BiSeNet face parser. ``forward`` returns ``(main, aux16, aux32)`` logits at the input size
    (bilinear, ``align_corners=True`` as upstream); only ``main`` is used for parsing."""

    def __init__(self, n_classes: int = N_CLASSES) -> None:
        super().__init__()
        self.n_classes = n_classes
        self.cp = ContextPath()
        self.ffm = FeatureFusionModule(256, 256)
        self.conv_out = BiSeNetOutput(256, 256, n_classes)
        self.conv_out16 = BiSeNetOutput(128, 64, n_classes)
        self.conv_out32 = BiSeNetOutput(128, 64, n_classes)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        size = x.shape[2:]
        f8, cp8, cp16 = self.cp(x)
        fuse = self.ffm(f8, cp8)
        up = lambda t: F.interpolate(t, size=size, mode="bilinear", align_corners=True)  # noqa: E731
        return up(self.conv_out(fuse)), up(self.conv_out16(cp8)), up(self.conv_out32(cp16))


# ---------------------------------------------------------------------------------------------------------
# Loading and inference


def load_bisenet(path: str | Path, device: str | torch.device = "cpu", n_classes: int = N_CLASSES) -> BiSeNet:
    """BiSeNet from the official ``79999_iter.pth`` (or any state_dict in its layout), in eval mode."""
    state = read_state_dict(path, "BiSeNet")
    head = state.get("conv_out.conv_out.weight")
    if head is not None and head.ndim == 4:
        n_classes = int(head.shape[0])
    net = BiSeNet(n_classes)
    load_state_official(net, state, path)
    return net.eval().requires_grad_(False).to(device)


@torch.no_grad()
def parse_faces(
    net: BiSeNet, images: np.ndarray, batch: int = 4, size: int = INPUT_SIZE
) -> np.ndarray:
    """Label maps (N, H, W) uint8 of RGB uint8 images (N, H, W, 3) (or one (H, W) map for one (H, W, 3) image).

    Reference preprocessing: bilinear resize to ``size`` x ``size`` (PIL-like, antialiased when shrinking),
    ``/255``, ImageNet mean/std; argmax of the main output; labels resized back with nearest neighbour.
    """
    arr = np.asarray(images)
    single = arr.ndim == 3
    if single:
        arr = arr[None]
    if arr.ndim != 4 or arr.shape[-1] != 3:
        raise StitchError(f"parse_faces needs RGB images (N, H, W, 3), got shape {arr.shape}")
    if arr.dtype != np.uint8:
        raise StitchError(f"parse_faces needs uint8 images, got {arr.dtype}")
    n, h, w = arr.shape[:3]
    p = next(net.parameters())
    mean = torch.tensor(IMAGENET_MEAN, device=p.device).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=p.device).view(1, 3, 1, 1)
    out = np.empty((n, h, w), np.uint8)
    for i in range(0, n, batch):
        x = torch.from_numpy(np.ascontiguousarray(arr[i:i + batch])).to(p.device).permute(0, 3, 1, 2).float() / 255.0
        if (h, w) != (size, size):
            x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
        logits = net(((x - mean) / std).to(p.dtype))
        if isinstance(logits, (tuple, list)):
            logits = logits[0]
        lab = logits.argmax(dim=1, keepdim=True).float()
        if (h, w) != (size, size):
            lab = F.interpolate(lab, size=(h, w), mode="nearest")
        out[i:i + batch] = lab[:, 0].to(torch.uint8).cpu().numpy()
    return out[0] if single else out


def foreground_from_parsing(labels: np.ndarray) -> np.ndarray:
    """Bool foreground mask of label maps (..., H, W): every class except background, cloth and hat."""
    return ~np.isin(np.asarray(labels), FOREGROUND_EXCLUDE)
