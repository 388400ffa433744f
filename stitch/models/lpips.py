"""LPIPS v0.1 (Zhang et al. 2018) with AlexNet / VGG-16 trunks, in pure torch (no torchvision).

Weights come from two user-supplied files; nothing is ever downloaded:

* the trunk, as torchvision saves it: ``alexnet-owt-7be5be79.pth`` / ``vgg16-397923af.pth`` (``features.<i>.weight``
  / ``.bias`` at torchvision's ``features`` indices; ``classifier.*`` may be present and is ignored). An LPIPS
  module ``state_dict`` (``net.slice<k>.<i>.*``) is accepted as well.
* the linear heads of the ``lpips`` package, ``weights/v0.1/alex.pth`` / ``vgg.pth``: ``lin<k>.model.1.weight``
  of shape (1, C_k, 1, 1) (index 1 because ``model`` is ``Sequential(Dropout, Conv1x1)``).

Distance: inputs in [-1, 1] go through the ScalingLayer ``(x - shift) / scale``, the trunk's ReLU outputs
(alex: ``features`` 1, 4, 7, 9, 11; vgg: 3, 8, 15, 22, 29) are unit-normalised over channels, squared differences
are weighted by the 1x1 heads, averaged spatially and summed over layers.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn as nn

from stitch.errors import StitchError
from stitch.models.bisenet import load_state_official, read_state_dict

#: LPIPS ScalingLayer constants (ImageNet statistics expressed for inputs in [-1, 1]).
SHIFT = (-0.030, -0.088, -0.188)
SCALE = (0.458, 0.448, 0.450)
EPS = 1e-10

# torchvision ``features`` layout: ("C", cin, cout, kernel, stride, padding) | ("R",) | ("M", kernel, stride)
_ALEX = [
    ("C", 3, 64, 11, 4, 2), ("R",), ("M", 3, 2),
    ("C", 64, 192, 5, 1, 2), ("R",), ("M", 3, 2),
    ("C", 192, 384, 3, 1, 1), ("R",),
    ("C", 384, 256, 3, 1, 1), ("R",),
    ("C", 256, 256, 3, 1, 1), ("R",),
]


def _vgg16_layout() -> list[tuple]:
    out: list[tuple] = []
    cin = 3
    for i, (cout, reps) in enumerate(((64, 2), (128, 2), (256, 3), (512, 3), (512, 3))):
        if i:
            out.append(("M", 2, 2))
        for _ in range(reps):
            out += [("C", cin, cout, 3, 1, 1), ("R",)]
            cin = cout
    return out


TRUNKS = {
    "alex": {"layout": _ALEX, "taps": (1, 4, 7, 9, 11), "channels": (64, 192, 384, 256, 256)},
    "vgg": {"layout": _vgg16_layout(), "taps": (3, 8, 15, 22, 29), "channels": (64, 128, 256, 512, 512)},
}
TRUNK_FILES = {"alex": "alexnet-owt-7be5be79.pth (torchvision)", "vgg": "vgg16-397923af.pth (torchvision)"}


def _net_name(net: str) -> str:
    name = {"alex": "alex", "alexnet": "alex", "vgg": "vgg", "vgg16": "vgg"}.get(str(net).lower())
    if name is None:
        raise StitchError(f"LPIPS net must be 'alex' or 'vgg', not {net!r}")
    return name


class NetLinLayer(nn.Module):
    """1x1 conv head without bias; ``model.0`` is the (parameter-free) dropout of the reference."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.model = nn.Sequential(nn.Dropout(), nn.Conv2d(channels, 1, 1, bias=False))


class LPIPS(nn.Module):
    """LPIPS distance. ``forward(a, b)`` takes (N, 3, H, W) images in [-1, 1] and returns (N,) distances."""

    def __init__(self, net: str = "alex") -> None:
        super().__init__()
        self.net_name = _net_name(net)
        spec = TRUNKS[self.net_name]
        layers: list[nn.Module] = []
        for op in spec["layout"]:
            if op[0] == "C":
                layers.append(nn.Conv2d(op[1], op[2], op[3], op[4], op[5]))
            elif op[0] == "R":
                layers.append(nn.ReLU())
            else:
                layers.append(nn.MaxPool2d(op[1], op[2]))
        self.features = nn.Sequential(*layers)
        self.taps = tuple(spec["taps"])
        for k, c in enumerate(spec["channels"]):
            self.add_module(f"lin{k}", NetLinLayer(c))
        self.register_buffer("shift", torch.tensor(SHIFT).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("scale", torch.tensor(SCALE).view(1, 3, 1, 1), persistent=False)

    @property
    def lins(self) -> list[NetLinLayer]:
        return [getattr(self, f"lin{k}") for k in range(len(self.taps))]

    def trunk_features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The tapped ReLU outputs of ``x`` (already scaled)."""
        out, last = [], self.taps[-1]
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i in self.taps:
                out.append(x)
            if i == last:
                break
        return out

    def forward(self, in0: torch.Tensor, in1: torch.Tensor, per_layer: bool = False):
        if in0.shape != in1.shape:
            raise StitchError(f"LPIPS inputs differ in shape: {tuple(in0.shape)} vs {tuple(in1.shape)}")
        n = in0.shape[0]
        f = self.trunk_features((torch.cat([in0, in1]) - self.shift) / self.scale)
        layers = []
        for feat, lin in zip(f, self.lins):
            feat = feat / (feat.pow(2).sum(dim=1, keepdim=True).sqrt() + EPS)
            d = (feat[:n] - feat[n:]).pow(2)
            layers.append(lin.model(d).mean(dim=(1, 2, 3)))
        total = torch.stack(layers).sum(0)
        return (total, layers) if per_layer else total


# ---------------------------------------------------------------------------------------------------------
# Loading


def _trunk_state(state: dict[str, torch.Tensor], path: Path, net: str) -> dict[str, torch.Tensor]:
    """``features.*`` tensors from a torchvision (``features.*`` [+ ``classifier.*``]) or LPIPS
    (``net.slice<k>.<i>.*`` [+ ``lin*`` / ``scaling_layer.*``]) state_dict; anything else is unexpected."""
    out: dict[str, torch.Tensor] = {}
    for k, v in state.items():
        if k.startswith("features."):
            out[k] = v
        elif k.startswith("net.slice"):
            parts = k.split(".")
            out["features." + ".".join(parts[2:])] = v
        elif k.startswith(("classifier.", "scaling_layer.", "lin")):
            continue
        else:
            out[k] = v  # reported as unexpected by the strict check
    if not out:
        raise StitchError(f"{path}: no 'features.*' tensors; expected torchvision {TRUNK_FILES[net]} weights")
    return out


def load_lpips(
    backbone_path: str | Path, heads_path: str | Path | None = None, net: str = "alex",
    device: str | torch.device = "cpu",
) -> LPIPS:
    """LPIPS from the torchvision trunk file and the lpips v0.1 head file (frozen, eval mode).

    ``heads_path`` may be None when ``backbone_path`` is a whole LPIPS ``state_dict`` holding the heads too.
    Missing files raise :class:`StitchError` (never downloads).
    """
    name = _net_name(net)
    model = LPIPS(name)
    bpath = Path(backbone_path)
    if not bpath.is_file():
        raise StitchError(
            f"LPIPS {name} trunk weights not found: {bpath} (supply {TRUNK_FILES[name]}; nothing is downloaded)"
        )
    bstate = read_state_dict(bpath, f"LPIPS {name} trunk")
    trunk = _trunk_state(bstate, bpath, name)
    if heads_path is None:
        heads = {k: v for k, v in bstate.items() if k.startswith("lin")}
        hpath: Path = bpath
        if not heads:
            raise StitchError(f"{bpath}: has no LPIPS heads (lin*.model.1.weight); pass the lpips v0.1 {name}.pth too")
    else:
        hpath = Path(heads_path)
        if not hpath.is_file():
            raise StitchError(
                f"LPIPS heads not found: {hpath} (supply lpips' weights/v0.1/{name}.pth; nothing is downloaded)"
            )
        heads = read_state_dict(hpath, f"LPIPS {name} heads")
    trunk_part = nn.Module()
    trunk_part.features = model.features
    load_state_official(trunk_part, trunk, bpath, f"the LPIPS {name} trunk")
    head_part = nn.Module()
    for k in range(len(model.taps)):
        head_part.add_module(f"lin{k}", getattr(model, f"lin{k}"))
    load_state_official(head_part, heads, hpath, f"the LPIPS {name} heads")
    return model.eval().requires_grad_(False).to(device)
