"""Stage ``ffhq_pack``: build the ``ffhq`` pack from the official files STIT uses.

The raw files go to ``resources/models/ffhq/raw/`` (downloaded there when a network is reachable and the file
has a direct URL; otherwise the error lists exactly which file goes where and where to get it). They are read
without executing code (``stitch.models.loaders``) and converted once into safetensors + JSON; the auxiliary
nets' ``.pth`` files are kept as they are (read with ``weights_only`` semantics) and listed with their sha256.
"""

from __future__ import annotations

import logging
import shutil
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from stitch.atomic import atomic_path
from stitch.directions import load_direction
from stitch.errors import StitchError
from stitch.models.loaders import load_e4e, load_generator
from stitch.models.native import save_model
from stitch.packs import save_directions, write_manifest

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class OfficialFile:
    """One file of the official pack: where it goes under ``raw/``, a direct URL if any, where to get it."""

    key: str
    file: str
    what: str
    url: str | None
    page: str
    required: bool = True


STIT_DIRECTIONS = ("age", "gender", "smile", "yaw", "pitch", "roll", "eyes_open", "eye_distance",
                   "eye_eyebrow_distance", "eye_ratio", "lip_ratio", "mouth_open", "mouth_ratio",
                   "nose_mouth_distance", "nose_ratio", "nose_tip")
_STIT_RAW = "https://raw.githubusercontent.com/rotemtzaban/STIT/main/editings/w_directions"

OFFICIAL_FILES: tuple[OfficialFile, ...] = (
    OfficialFile("generator", "ffhq.pkl", "NVIDIA StyleGAN2-ADA FFHQ 1024 px network pickle (G_ema)",
                 "https://nvlabs-fi-cdn.nvidia.com/stylegan2-ada-pytorch/pretrained/ffhq.pkl",
                 "https://github.com/NVlabs/stylegan2-ada-pytorch (pretrained ffhq.pkl)"),
    OfficialFile("encoder", "e4e_ffhq_encode.pt", "e4e FFHQ encoder (encoder + decoder, latent_avg, opts)", None,
                 "https://github.com/omertov/encoder4editing README, 'FFHQ Inversion' (Google Drive)"),
    *(OfficialFile(f"direction_{d}", f"w_directions/{d}.npy", f"STIT W direction '{d}' (18 x 512)",
                   f"{_STIT_RAW}/{d}.npy", "https://github.com/rotemtzaban/STIT/tree/main/editings/w_directions")
      for d in STIT_DIRECTIONS),
    OfficialFile("bisenet", "79999_iter.pth", "BiSeNet face parsing, 19 classes", None,
                 "https://github.com/zllrunning/face-parsing.PyTorch README (Google Drive 79999_iter.pth)",
                 required=False),
    OfficialFile("lpips_backbone", "alexnet-owt-7be5be79.pth", "torchvision AlexNet ImageNet weights (LPIPS trunk)",
                 "https://download.pytorch.org/models/alexnet-owt-7be5be79.pth",
                 "https://download.pytorch.org/models/alexnet-owt-7be5be79.pth", required=False),
    OfficialFile("lpips_heads", "alex.pth", "LPIPS v0.1 alex linear heads",
                 "https://github.com/richzhang/PerceptualSimilarity/raw/master/lpips/weights/v0.1/alex.pth",
                 "the `lpips` PyPI package: lpips/weights/v0.1/alex.pth", required=False),
)


def fetch(raw: Path, download: bool = True, timeout: float = 20.0) -> dict[str, Path]:
    """Paths of the raw files present (downloading what has a URL when allowed); StitchError listing every
    missing required file with its destination and source."""
    raw.mkdir(parents=True, exist_ok=True)
    found, missing = {}, []
    for f in OFFICIAL_FILES:
        dst = raw / f.file
        if not dst.is_file() and download and f.url:
            _download(f.url, dst, timeout)
        if dst.is_file():
            found[f.key] = dst
        elif f.required:
            missing.append(f)
        else:
            log.warning("optional %s not found at %s (%s): the pack will use the fallback", f.key, dst, f.page)
    if missing:
        lines = [f"  {raw / f.file}  <- {f.what}; get it from {f.page}" for f in missing]
        raise StitchError(f"the ffhq pack needs {len(missing)} file(s) that are missing (no download possible here); "
                          "put each one at the path shown, then rerun `snakemake ffhq_pack`:\n" + "\n".join(lines))
    return found


def _download(url: str, dst: Path, timeout: float) -> None:
    try:
        with atomic_path(dst) as tmp, urllib.request.urlopen(url, timeout=timeout) as r, open(tmp, "wb") as out:
            shutil.copyfileobj(r, out)
        log.info("downloaded %s -> %s", url, dst)
    except OSError as e:
        log.warning("could not download %s (%s)", url, e)


def build_ffhq_pack(pack_dir: str | Path, download: bool = True, name: str = "ffhq") -> Path:
    """Convert the raw official files in ``pack_dir/raw`` into the pack ``pack_dir`` (manifest written last)."""
    root = Path(pack_dir)
    raw = fetch(root / "raw", download=download)
    (root / "pack.yaml").unlink(missing_ok=True)  # a half-built pack must not look complete
    G = load_generator(raw["generator"])
    encoder, _ = load_e4e(raw["encoder"])
    if encoder.cfg.num_ws != G.num_ws or encoder.cfg.w_dim != G.w_dim:
        raise StitchError(f"{raw['encoder']}: encoder gives {encoder.cfg.num_ws} x {encoder.cfg.w_dim} codes, the generator "
                          f"{raw['generator']} wants {G.num_ws} x {G.w_dim}")
    save_model(G, root / "generator.safetensors", extra={"source": raw["generator"].name})
    save_model(encoder, root / "encoder.safetensors", extra={"source": raw["encoder"].name})
    dirs = {d: load_direction(raw[f"direction_{d}"], num_ws=G.num_ws) for d in STIT_DIRECTIONS}
    save_directions(root / "directions.safetensors", dirs)
    files: dict = {
        "generator": {"path": "generator.safetensors", "config": ["generator.json"]},
        "encoder": {"path": "encoder.safetensors", "config": ["encoder.json"]},
        "directions": {"path": "directions.safetensors"},
    }
    for key in ("bisenet", "lpips_backbone", "lpips_heads"):
        files[key] = {"path": str(raw[key].relative_to(root))} if key in raw else None
    meta = {
        "name": name, "resolution": G.img_resolution, "num_ws": G.num_ws, "w_dim": G.w_dim,
        "align_scale": 1.0, "encoder_input": encoder.cfg.input_size,
        "identity": "dlib_face_recognition_resnet_model_v1 (PyPI face_recognition_models)",
        "licence": "NVIDIA Source Code License-NC (StyleGAN2-ADA), e4e/STIT/BiSeNet/LPIPS per their projects; "
                   "research use",
        "provenance": {f.key: {"file": f.file, "source": f.page} for f in OFFICIAL_FILES if f.key in raw},
        "how_to_get": "snakemake ffhq_pack (see README: put the official files under resources/models/ffhq/raw/)",
        "files": files,
        "defaults": {"pti": {"epochs": 80, "lr": 3e-5}, "stitching": {"max_steps": 100, "border_threshold": 0.005}},
    }
    write_manifest(root, meta)
    log.info("ffhq pack ready at %s: generator %d px, %d ws; %d directions; bisenet %s; lpips %s", root,
             G.img_resolution, G.num_ws, len(dirs), "yes" if files["bisenet"] else "no (landmark masks)",
             "yes" if files["lpips_heads"] and files["lpips_backbone"] else "no (MSE-only PTI)")
    return root

