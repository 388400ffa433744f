# Config validation, the samples table and the settings every rule shares.
import math
import os
from pathlib import Path

import pandas as pd
import yaml
from snakemake.utils import validate


# Progress bars of long loops end up in the logs of the jobs; refresh them every 10 s, not every step.
os.environ.setdefault("TQDM_MININTERVAL", "10")

validate(config, schema="../schemas/config.schema.yaml")

SAMPLES = pd.read_csv(config["samples"], sep="\t", dtype=str, comment="#").set_index("sample", drop=False)
for _col in SAMPLES.columns:
    if _col not in ("sample", "path", "faces", "pack"):
        SAMPLES[_col] = pd.to_numeric(SAMPLES[_col])
SAMPLES = SAMPLES.astype(object).where(SAMPLES.notna(), None)
validate(SAMPLES, schema="../schemas/samples.schema.yaml")
if SAMPLES.index.has_duplicates:
    raise ValueError(f"{config['samples']}: duplicate sample names {sorted(SAMPLES.index[SAMPLES.index.duplicated()])}")

RESULTS = config["results"]
PACKS_DIR = Path(workflow.basedir) / "resources" / "models"
# STIT's published defaults: the last fallback after samples.tsv, config.yaml and the pack's defaults.
STIT_DEFAULTS = {
    "pti": {"epochs": 300, "lr": 3e-5},
    "stitching": {"max_steps": 100, "border_threshold": 0.005},
}


def expand_edits():
    """Named edits incl. strength sweeps (<edit>_x<multiplier>) -> {name: {direction: factor}}."""
    edits = {k: dict(v) for k, v in config["edits"].items()}
    for name, mults in config.get("sweeps", {}).items():
        if name not in config["edits"]:
            raise ValueError(f"sweeps.{name}: no edit named {name!r} in config edits")
        for m in mults:
            edits[f"{name}_x{m:g}".replace(".", "p").replace("-", "m")] = {
                d: f * m for d, f in config["edits"][name].items()
            }
    return edits


EDITS = expand_edits()


METHODS = ("e4e", "pti_frame", "no_stitch", "stit")


wildcard_constraints:
    video="|".join(SAMPLES.index),
    method="|".join(METHODS),
    edit="|".join(["_recon", *EDITS]),


def sample_value(video, column):
    return SAMPLES.loc[video].get(column) if column in SAMPLES.columns else None


def pack_name(video):
    return sample_value(video, "pack") or config["pack"]


def pack_dir(video):
    name = pack_name(video)
    return str(PACKS_DIR / name) if (PACKS_DIR / name / "pack.yaml").is_file() else name


def pack_meta(video):
    path = Path(pack_dir(video)) / "pack.yaml"
    if not path.is_file():
        raise ValueError(f"model pack {pack_name(video)!r} not found at {path}; run `snakemake models` or see README")
    return yaml.safe_load(path.read_text())


def setting(video, stage, key):
    """samples.tsv column <stage>_<key> > config[stage][key] > pack defaults > STIT default."""
    value = sample_value(video, f"{stage}_{key}")
    if value is None:
        value = config.get(stage, {}).get(key)
    if value is None:
        value = (pack_meta(video).get("defaults") or {}).get(stage, {}).get(key)
    if value is None:
        value = STIT_DEFAULTS.get(stage, {}).get(key)
    if value is None:
        raise ValueError(f"no value for {stage}.{key} (video {video})")
    return value.item() if hasattr(value, "item") else value


def stage_settings(stage, keys):
    return lambda wc: {k: setting(wc.video, stage, k) for k in keys}


def faces_setting(video):
    value = sample_value(video, "faces") or config["faces"]
    if isinstance(value, str) and value not in ("largest", "all"):
        return [int(v) for v in value.split(",")]
    return value


def video_path(wc):
    return SAMPLES.loc[wc.video, "path"]


def pack_files(wc):
    """Pack files as inputs: a changed or missing weight file reruns/blocks the model stages."""
    root = Path(pack_dir(wc.video))
    return [str(root / "pack.yaml")]


def R(*parts):
    return str(Path(RESULTS, "{video}", *parts))


def method_crops(wc):
    """Face crops a method produced for one edit: stitching for STIT (its _recon is the PTI reconstruction,
    shared with no_stitch); the baseline stage for the others."""
    if wc.method == "stit" or (wc.method == "no_stitch" and wc.edit == "_recon"):
        path = R("stitching", "{edit}.npz")
    else:
        path = R("baseline", "{method}", "{edit}.npz")
    return path.format(video=wc.video, method=wc.method, edit=wc.edit)


def baseline_inputs(wc):
    """e4e/no_stitch render the edited latents (the pivots for _recon); no_stitch also needs the PTI generators."""
    fmt = dict(video=wc.video, edit=wc.edit)
    inputs = {
        "crops": R("crop", "crops.npz").format(**fmt),
        "latents": (R("invert", "pivots.npy") if wc.edit == "_recon" else R("edit", "{edit}.npy")).format(**fmt),
        "pack": pack_files(wc),
    }
    if wc.method == "no_stitch":
        inputs["generators"] = R("pti", "generators.safetensors").format(**fmt)
    return inputs


def all_outputs():
    out = []
    for video in SAMPLES.index:
        for edit in EDITS:
            for method in config["methods"]:
                out.append(f"{RESULTS}/{video}/encode/{method}/{edit}.mp4")
                out.append(f"{RESULTS}/{video}/encode/{method}/side_by_side_{edit}.mp4")
    return out
