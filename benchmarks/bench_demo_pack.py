"""Measure the embedded demo pack: what issue 'demo pack' asks to show, printed and saved as JSON.

    python benchmarks/bench_demo_pack.py [--work results/bench_demo] [--skip-run]

1. Encoder on the 300 held-out UTKFace faces: mean PSNR of E -> G reconstructions at 64 px, and the share whose
   dlib descriptor (raw, unnormalised: the 0.6 threshold's scale) stays within 0.6 of the source's. Both images
   are upscaled to 256 px; the source's landmarks place the face on both (same geometry by construction).
2. The workflow on the demo clip and a 48-frame cut of talk_1 with the demo pack (edits older / younger / smile /
   gender towards the other sex): PTI reconstruction PSNR at crop resolution (pti/stats.json).
3. Edit strength with the generator-independent attribute probe (dlib descriptors, ridge age / logistic gender,
   landmark smile), on the held-out UTKFace faces aged 20-60 (121; no PTI) and on both videos: mean
   predicted-age change for older/younger, share of frames whose predicted gender flips for the gender edit,
   smile-score change.
4. A contact sheet per video (rows: original, reconstruction, every edit; columns: 4 time points).
Needs ../shared/data (UTKFace tar for 1 when results/zoo/data/utkface.npz is absent; talk_1.mp4 for 2-4).
"""

from __future__ import annotations

import argparse
import json
import logging
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import torch
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from stitch.democlip import make_demo_clip  # noqa: E402
from stitch.video import cut_clip, read_frames  # noqa: E402

SHARED = REPO.parent / "shared" / "data"
EDITS = {"older": {"age": 8}, "younger": {"age": -8}, "older_x2": {"age": 16}, "younger_x2": {"age": -16},
         "smile": {"smile": 3}, "to_male": {"gender": 6}, "to_female": {"gender": -6}}
log = logging.getLogger("bench_demo_pack")


def heldout_data() -> dict:
    """The demo pack's UTKFace training set (rebuilt by zoo_data's code when absent); only held-out faces are used."""
    data_path = REPO / "results" / "zoo" / "data" / "utkface.npz"
    if not data_path.is_file():
        from stitch.zoo.data import build_dataset

        build_dataset(SHARED / "faces" / "utkface.tar", data_path)
    return dict(np.load(data_path))


def probe_crops(probe, crops: np.ndarray) -> tuple[dict, np.ndarray]:
    """The attribute probe on 64 px crops upscaled to 256 px (bicubic): per-crop attributes and dlib descriptors."""
    from stitch.probes import attributes, frame_descriptors

    up = np.stack([cv2.resize(c, (256, 256), interpolation=cv2.INTER_CUBIC) for c in crops])
    desc, found, lms = frame_descriptors(up, upsample=1)
    return attributes(probe, desc, found, lms), desc


def encoder_heldout(d: dict, n: int = 300, models: tuple | None = None) -> dict:
    """PSNR, dlib identity distance and the probe's age bias of E -> G reconstructions of held-out faces.

    ``models``: (generator, encoder) to measure instead of the demo pack's (e.g. a training snapshot).
    """
    import dlib

    from stitch.dlib_models import model_path
    from stitch.invert import invert_crops
    from stitch.packs import Pack
    from stitch.probes import AttributeProbe
    from stitch.tensors import render, tensor_to_crops

    src = d["crops"][d["holdout"]][:n]
    if models is None:
        pack = Pack.open("demo")
        models = (pack.generator(), pack.encoder())
    rec = tensor_to_crops(render(models[0], invert_crops(models[1], src, batch=50, progress=False)))
    probe = AttributeProbe.load()
    ages = [probe_crops(probe, imgs)[0]["age"] for imgs in (src, rec)]
    both = np.isfinite(ages[0]) & np.isfinite(ages[1])
    true_age = d["age"][d["holdout"]][:n]
    mse = ((rec.astype(np.float64) - src) ** 2).mean(axis=(1, 2, 3))
    psnr = 10 * np.log10(255.0**2 / mse)
    det = dlib.get_frontal_face_detector()
    sp = dlib.shape_predictor(str(model_path("shape_68")))
    rec_net = dlib.face_recognition_model_v1(str(model_path("face_recognition")))
    dists = []
    for a, b in zip(src, rec):
        a256 = np.ascontiguousarray(cv2.resize(a, (256, 256), interpolation=cv2.INTER_CUBIC))
        b256 = np.ascontiguousarray(cv2.resize(b, (256, 256), interpolation=cv2.INTER_CUBIC))
        rects = det(a256, 1)
        if not rects:
            continue
        r = max(rects, key=lambda x: x.area())
        sa, sb = sp(a256, r), sp(b256, r)
        da = np.array(rec_net.compute_face_descriptor(a256, sa))
        db = np.array(rec_net.compute_face_descriptor(b256, sb))
        dists.append(float(np.linalg.norm(da - db)))
    dists = np.array(dists)
    return {"heldout_faces": int(len(src)), "psnr_mean_db": float(psnr.mean()), "faces_with_landmarks": int(len(dists)),
            "dlib_distance_median": float(np.median(dists)), "share_within_0.6": float((dists < 0.6).mean()),
            # probe age of the reconstruction minus that of the source (both upscaled to 256 px), and how well the
            # reconstruction's probe age follows the true age (Pearson r)
            "probe_age_faces": int(both.sum()),
            "recon_age_bias_years": float(np.mean(ages[1][both] - ages[0][both])),
            "recon_age_r_true": float(np.corrcoef(ages[1][both], true_age[both])[0, 1]),
            "source_age_r_true": float(np.corrcoef(ages[0][both], true_age[both])[0, 1])}


def heldout_edits(d: dict, n: int = 150, models: tuple | None = None, directions: dict | None = None) -> dict:
    """Edit strength on (at most ``n``) held-out UTKFace faces aged 20-60 without PTI.

    E -> w + factor/2 d -> G, probed at 256 px.

    Deltas are edited minus unedited reconstruction (both blurry 64 px renders, so the probe's bias cancels);
    the gender edit goes towards the other sex of each face's label. Also the median dlib distance to the
    unedited reconstruction (how much of the person the edit keeps). ``models`` (generator, encoder) and
    ``directions`` replace the demo pack's (e.g. a training snapshot).
    """
    from stitch.invert import invert_crops
    from stitch.packs import Pack
    from stitch.probes import AttributeProbe
    from stitch.tensors import render, tensor_to_crops

    pick = np.where(d["holdout"] & np.isin(d["gender"], (0, 1)) & (d["age"] >= 20) & (d["age"] <= 60))[0][:n]
    probe = AttributeProbe.load()
    if models is None:
        pack = Pack.open("demo")
        models, directions = (pack.generator(), pack.encoder()), pack.directions
    G, dirs = models[0], {k: v.numpy() for k, v in directions.items()}
    codes = invert_crops(models[1], d["crops"][pick], batch=50, progress=False)
    male = d["gender"][pick] == 0

    def probe_codes(ws: np.ndarray):
        return probe_crops(probe, tensor_to_crops(render(G, torch.from_numpy(ws.astype(np.float32)))))

    base, base_desc = probe_codes(codes)
    out = {"faces": int(len(pick)), "faces_found_unedited": int(np.isfinite(base["age"]).sum())}
    steps = {edit: next(iter(change.items())) for edit, change in EDITS.items() if not edit.startswith("to_")}
    steps["to_other_sex"] = ("gender", np.where(male, -1.0, 1.0)[:, None, None] * EDITS["to_male"]["gender"])
    for edit, (attr, factor) in steps.items():
        a, desc = probe_codes(codes + factor / 2 * dirs[attr][None])
        row = {"age_delta": float(np.nanmean(a["age"] - base["age"])),
               "smile_delta": float(np.nanmean(a["smile"] - base["smile"])),
               "dlib_distance_median": float(np.nanmedian(np.linalg.norm(desc - base_desc, axis=1)))}
        if attr == "gender":
            ok = np.isfinite(a["p_male"]) & np.isfinite(base["p_male"])
            row["gender_flipped_share"] = float(((a["p_male"] > 0.5) != (base["p_male"] > 0.5))[ok].mean())
        out[edit] = row
    return out


def run_workflow(work: Path) -> float:
    work.mkdir(parents=True, exist_ok=True)
    (work / "inputs").mkdir(exist_ok=True)
    (work / "config").mkdir(exist_ok=True)
    if not (work / "inputs" / "grace_hopper.mp4").exists():
        make_demo_clip(work / "inputs" / "grace_hopper.mp4")
    if not (work / "inputs" / "talk_1.mp4").exists():
        cut_clip(SHARED / "videos" / "talk_1.mp4", work / "inputs" / "talk_1.mp4", 0, 48)
    cfg = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    cfg.update(samples="config/samples.tsv", results="results", edits=EDITS, sweeps={}, methods=["stit"])
    (work / "config" / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    (work / "config" / "samples.tsv").write_text(
        "sample\tpath\ngrace_hopper\tinputs/grace_hopper.mp4\ntalk_1\tinputs/talk_1.mp4\n")
    t0 = time.time()
    subprocess.run(["snakemake", "-s", str(REPO / "Snakefile"), "-d", str(work), "--cores", "2", "--resources", "gpu=1",
                    "--quiet", "rules"], check=True)
    return time.time() - t0


def probe_edits(work: Path) -> dict:
    from stitch.probes import AttributeProbe, probe_frames

    probe = AttributeProbe.load()
    out = {}
    for video in ("grace_hopper", "talk_1"):
        res = work / "results" / video
        src = probe_frames(read_frames(work / "inputs" / f"{video}.mp4"), probe=probe)
        male = float(np.nanmean(src["p_male"])) > 0.5
        row = {"source_age": float(np.nanmean(src["age"])), "source_p_male": float(np.nanmean(src["p_male"])),
               "pti_psnr_db": json.loads((res / "pti" / "stats.json").read_text())["faces"]["face0"]["psnr_after"]}
        for edit in ("_recon", *EDITS):  # _recon: the unedited reconstruction (how much the probe reads blur as age)
            if edit == ("to_male" if male else "to_female"):
                continue
            df = probe_frames(read_frames(res / "encode" / "stit" / f"{edit}.mp4"), probe=probe)
            ok = df["found"].to_numpy() & src["found"].to_numpy()
            e = {"frames_probed": int(ok.sum()),
                 "age_delta": float((df["age"] - src["age"])[ok].mean()),
                 "smile_delta": float((df["smile"] - src["smile"])[ok].mean()),
                 "p_male": float(df["p_male"][ok].mean())}
            if edit.startswith("to_"):
                e["gender_flipped_share"] = float(((df["p_male"][ok] > 0.5) != male).mean())
            row[edit] = e
        out[video] = row
    return out


def contact_sheet(work: Path, video: str, out: Path) -> Path:
    res = work / "results" / video / "encode" / "stit"
    rows = [("original", read_frames(work / "inputs" / f"{video}.mp4"))]
    rows += [(p.stem, read_frames(p)) for p in sorted(res.glob("*.mp4")) if not p.stem.startswith("side_by_side")]
    n = len(rows[0][1])
    idx = np.linspace(0, n - 1, 4).round().astype(int)
    h = 160
    strips = []
    for name, frames in rows:
        tiles = [cv2.resize(frames[i], (round(frames.shape[2] * h / frames.shape[1]), h), interpolation=cv2.INTER_AREA)
                 for i in idx]
        label = np.zeros((h, 110, 3), np.uint8)
        cv2.putText(label, name, (4, h // 2), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (255, 255, 255), 1, cv2.LINE_AA)
        strips.append(np.concatenate([label, *tiles], axis=1))
    sheet = np.concatenate(strips, axis=0)
    cv2.imwrite(str(out), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", default=str(REPO / "results" / "bench_demo"))
    ap.add_argument("--skip-run", action="store_true", help="reuse an earlier workflow run in --work")
    a = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    torch.set_num_threads(2)
    work = Path(a.work)
    data = heldout_data()
    metrics = {"encoder": encoder_heldout(data), "heldout_edits": heldout_edits(data)}
    print(json.dumps({k: metrics[k] for k in ("encoder", "heldout_edits")}, indent=2), flush=True)
    if not a.skip_run:
        metrics["workflow_seconds"] = run_workflow(work)
    metrics["edits"] = probe_edits(work)
    metrics["contact_sheets"] = [str(contact_sheet(work, v, work / f"contact_sheet_{v}.png"))
                                 for v in ("grace_hopper", "talk_1")]
    (work / "demo_pack_metrics.json").write_text(json.dumps(metrics, indent=2))
    print(json.dumps(metrics, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
