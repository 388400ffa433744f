# Config validation, the samples table and the settings every rule shares.
import json
import os
import sys
from pathlib import Path
from types import SimpleNamespace

import functools

import pandas as pd
import yaml
from snakemake.utils import validate

import stitch.preflight as preflight
import stitch.settings as stitch_settings
from stitch.edit_range import parse_range_column, split_edit
from stitch.targets import split_targets
from stitch.errors import StitchError
from stitch.packs import Pack, resolve_pack_dir
from stitch.shards import num_shards, shard_name
from stitch.settings import Setting


# Progress bars of long loops end up in the logs of the jobs; refresh them every 10 s, not every step.
os.environ.setdefault("TQDM_MININTERVAL", "10")

CONFIG_SCHEMA = yaml.safe_load((Path(workflow.basedir) / "workflow" / "schemas" / "config.schema.yaml").read_text())
SAMPLES_SCHEMA = yaml.safe_load((Path(workflow.basedir) / "workflow" / "schemas" / "samples.schema.yaml").read_text())


def config_sources():
    """(name, YAML mapping) of each config source in Snakemake's merge order (later ones win): the Snakefile's
    configfile, each --configfile, --config. Bad values are reported with the file that sets them."""
    cli = [Path(f).absolute() for f in workflow.config_settings.configfiles]
    files = [Path(f) for f in workflow.configfiles if Path(f).absolute() not in cli] + cli
    if workflow.config_settings.replace_workflow_config:  # the Snakefile's configfile is dropped
        files = cli
    show = lambda f: os.path.relpath(f) if Path(f).absolute().is_relative_to(Path.cwd()) else str(f)
    sources = [(show(f), yaml.safe_load(Path(f).read_text()) or {}) for f in files]
    return sources + ([("--config", dict(workflow.config_settings.config))] if workflow.config_settings.config else [])


CONFIG_SOURCES = config_sources()
with preflight.fail_early():  # one line per bad input, before any job (stitch.preflight)
    preflight.check_config(config, CONFIG_SCHEMA, CONFIG_SOURCES)
validate(config, schema="../schemas/config.schema.yaml")  # valid by now: fills in the schema's defaults
# samples.tsv columns that are neither settings (<stage>_<key>, stitch.settings) nor the base columns
EXTRA_SAMPLE_COLUMNS = ("edit_range",)


def load_samples(path):
    """samples.tsv -> DataFrame of typed cells (None = empty: fall back); bad cells and unknown columns: one line."""
    if not Path(path).is_file():
        raise StitchError(f"samples table {path} not found (config key samples:); create it or fix the path")
    table = pd.read_csv(path, sep="\t", dtype=str, comment="#", keep_default_na=False)
    if "sample" not in table.columns or "path" not in table.columns:
        raise StitchError(f"{path}: needs the columns 'sample' and 'path' (tab-separated header), found {list(table.columns)}")
    rows = [stitch_settings.parse_sample_row(r, f"{path}, sample {r['sample']!r}", EXTRA_SAMPLE_COLUMNS, CONFIG_SCHEMA)
            for r in table.to_dict("records")]
    for row in rows:
        check_sample(row, f"{path}, sample {row['sample']!r}")
    samples = pd.DataFrame(rows, columns=table.columns, dtype=object).set_index("sample", drop=False)
    if samples.index.has_duplicates:
        raise StitchError(f"{path}: duplicate sample names {sorted(set(samples.index[samples.index.duplicated()]))}; "
                          "give each row its own name")
    return samples


def check_sample(row, where):
    """A typed samples.tsv row: valid cells, and its video exists unless a rule makes it (under results/)."""
    preflight.check_sample_row(row, SAMPLES_SCHEMA, where)
    video = Path(row["path"])
    if not video.exists() and not video.resolve().is_relative_to(Path(config["results"]).resolve()):
        raise StitchError(f"{where}: path {row['path']!r} does not exist; give the video's path, relative to the "
                          "working directory")


with preflight.fail_early():
    SAMPLES = load_samples(config["samples"])
validate(SAMPLES, schema="../schemas/samples.schema.yaml")

RESULTS = config["results"]
PACKS_DIR = Path(workflow.basedir) / "resources" / "models"
BUILDABLE_PACKS = ("ffhq",)  # packs a rule of this workflow assembles (rule ffhq_pack)
# The shipped attribute probe (input of the evaluation; fitted by rule zoo_probe, shipped by rule zoo_publish)
PROBE = {"probe": str(Path(workflow.basedir, "resources", "probes", "attributes.safetensors")),
         "probe_config": str(Path(workflow.basedir, "resources", "probes", "attributes.json"))}


def sweep_name(edit, multiplier):
    """Name of a strength-sweep edit: older x0.5 -> older_x0p5 (x-1 -> older_xm1)."""
    return f"{edit}_x{multiplier:g}".replace(".", "p").replace("-", "m")


def expand_edits():
    """Named edits incl. strength sweeps (<edit>_x<multiplier>) -> ({name: {direction: raw factor}}, {name: time
    range or None}, {name: {target: value}}); a sweep keeps its edit's time range (stitch.edit_range.split_edit:
    start/end/ramp are not factors) and targets (stitch.targets: its factors are the calibrated ones x multiplier)."""
    edits, ranges, targets = {}, {}, {}
    for name, spec in config["edits"].items():
        factors, ranges[name] = split_edit(name, spec)
        edits[name], targets[name] = split_targets(factors)
    for name, mults in config.get("sweeps", {}).items():
        if name not in config["edits"]:
            raise StitchError(f"{preflight.defined_in(CONFIG_SOURCES, ['sweeps', name])}: sweeps.{name}: no edit "
                              f"named {name!r} under edits:; sweep one of {', '.join(config['edits'])}")
        for m in mults:
            edits[sweep_name(name, m)] = {d: f * m for d, f in edits[name].items()}
            ranges[sweep_name(name, m)] = ranges[name]
            targets[sweep_name(name, m)] = targets[name]
    return edits, ranges, targets


with preflight.fail_early():
    EDITS, EDIT_RANGES, EDIT_TARGETS = expand_edits()


def sample_edit_ranges(video):
    """The samples.tsv column edit_range of one video -> {edit: time range} (stitch.edit_range.parse_range_column)."""
    text = SAMPLES.loc[video].get("edit_range") if "edit_range" in SAMPLES.columns else None
    if not text:
        return {}
    where = f"{config['samples']}, sample {video!r}"
    ranges = parse_range_column(text, where)
    unknown = sorted(set(ranges) - set(config["edits"]))
    if unknown:
        raise StitchError(f"{where}: edit_range names {unknown}, not edits of config.yaml "
                          f"({', '.join(config['edits'])})")
    return ranges


with preflight.fail_early():
    SAMPLE_EDIT_RANGES = {video: sample_edit_ranges(video) for video in SAMPLES.index}  # checked at parse time
SWEPT_EDIT = {sweep_name(e, m): e for e, mults in config.get("sweeps", {}).items() for m in mults}  # sweep -> edit


SWEEP_MULTIPLIER = {sweep_name(e, m): float(m) for e, mults in config.get("sweeps", {}).items() for m in mults}


def calibration_input(wc):
    """Rule edit's extra input: the calibrated factors (calibrate/{edit}.json of the edit, or of the edit a sweep
    scales) when the edit has targets (stitch.targets); nothing for raw factors only."""
    if not EDIT_TARGETS[wc.edit]:
        return {}
    return {"calibration": R("calibrate", "{edit}.json").format(video=wc.video, edit=SWEPT_EDIT.get(wc.edit, wc.edit))}


def edit_range(video, edit):
    """An edit's time range on one video: the samples.tsv edit_range of the edit (or of the edit a sweep
    scales) > the config's start/end/ramp; None = every frame."""
    return SAMPLE_EDIT_RANGES[video].get(SWEPT_EDIT.get(edit, edit), EDIT_RANGES[edit])


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
    """The video's pack folder (stitch.packs.resolve_pack_dir: a path, else resources/models/<name>); a pack that a
    rule builds (ffhq) may be missing until that rule ran."""
    name = pack_name(video)
    try:
        return str(resolve_pack_dir(name))
    except StitchError:
        if name in BUILDABLE_PACKS:
            return str(PACKS_DIR / name)
        raise


@functools.cache
def _pack_meta(directory):
    path = Path(directory) / "pack.yaml"
    if not path.is_file():
        raise StitchError(f"model pack {path.parent.name!r} not built yet ({path} missing): run `snakemake ffhq_pack` "
                          "(see README) or choose another pack")
    meta = Pack.open(directory).meta  # YAML, required keys, sha256 format (one line each)
    stitch_settings.check_pack_defaults(meta.get("defaults") or {}, str(path), CONFIG_SCHEMA)
    return meta


def pack_meta(video):
    return _pack_meta(pack_dir(video))


@functools.cache
def video_settings(video):
    """{stage: {key: Setting(value, source)}} of one video (stitch.settings: sample > config > pack > default)."""
    row = {k: v for k, v in SAMPLES.loc[video].items()}
    meta = pack_meta(video)
    where = {"sample": f"{config['samples']} (sample {video})", "config": " + ".join(n for n, _ in CONFIG_SOURCES),
             "pack": f"{Path(pack_dir(video)) / 'pack.yaml'}"}
    return stitch_settings.resolve(row, config, meta.get("defaults") or {}, where, CONFIG_SCHEMA)


def setting(video, stage, key):
    return video_settings(video)[stage][key].value


@functools.cache
def shard_frames_setting(video):
    where = {"sample": f"{config['samples']} (sample {video}, column shard_frames)",
             "config": preflight.defined_in(CONFIG_SOURCES, ["shard_frames"])}
    return stitch_settings.resolve_shard_frames(dict(SAMPLES.loc[video].items()), config, where)


def shard_frames(video):
    """Frames per shard of one video (samples column shard_frames > config shard_frames > 200)."""
    return shard_frames_setting(video).value


def video_shards(video):
    """The shard names of a video. Its frame count is the frames stage's decoded count (frames/info.json): frames
    is a checkpoint, so the per-shard jobs are planned once it has run."""
    info = json.loads(Path(checkpoints.frames.get(video=video).output.info).read_text())
    return [shard_name(k) for k in range(num_shards(info["num_frames"], shard_frames(video)))]


SHARD = r"\d{4}"  # the {shard} wildcard: stitch.shards.shard_name


def shard_paths(pattern, video, **fmt):
    """``pattern`` (with {shard}) for every shard of ``video``."""
    return [pattern.format(**{**fmt, "video": video, "shard": s}) for s in video_shards(video)]


def shard_files(pattern):
    """Input function: ``pattern`` (with {shard}) for every shard of the job's video."""
    return lambda wc: shard_paths(pattern, wc.video, **{k: v for k, v in wc.items() if k not in ("video", "shard")})


@functools.cache
def pack_directions(directory):
    """Direction names of a pack (safetensors header), after checking its manifest and that its files exist."""
    pack = Pack.open(directory)
    pack.check_files()
    return pack.direction_names()


def check_videos():
    """Before any job: each video's pack exists and is complete, its settings resolve and every edit's directions
    are in its pack (a pack that a rule builds, ffhq, is checked once built)."""
    for video in SAMPLES.index:
        try:
            directory = pack_dir(video)
        except StitchError as e:  # name where the pack came from
            by_sample = sample_value(video, "pack")
            where = f"{config['samples']}, sample {video!r}, column pack" if by_sample else \
                preflight.defined_in(CONFIG_SOURCES, ["pack"])
            raise StitchError(f"{where}: {e}") from None
        if not (Path(directory) / "pack.yaml").is_file():
            continue
        video_settings(video)
        shard_frames(video)
        name = pack_name(video)
        label = directory if Path(name).resolve() == Path(directory).resolve() else f"{name!r} ({directory})"
        preflight.check_edit_directions({e: {**EDITS[e], **EDIT_TARGETS[e]} for e in config["edits"]},
                                        pack_directions(directory), label, CONFIG_SOURCES)


with preflight.fail_early():
    check_videos()


def remove_stale_outputs():
    """Before the jobs run, delete the existing outputs of every job this run redoes. Snakemake deletes them only
    when each job starts, and a missing intermediate file does not make it redo what follows (paste's frames are
    temp()): if a job failed, the next run would take the old results after it for up to date."""
    if workflow.touch:
        return
    stale = [str(f) for job in workflow.dag.needrun_jobs() for f in job.output]
    with preflight.fail_early():  # a read-only results folder: one line, not Snakemake's traceback
        preflight.check_writable(stale)
    removed = preflight.remove_outputs(stale)
    if removed:
        print(f"stitch: removed {removed} old outputs of the jobs this run redoes", file=sys.stderr)


onstart:
    remove_stale_outputs()


def stage_settings(stage):
    """Rule params: the video's resolved settings of one stage as {key: value}."""
    return lambda wc: stitch_settings.values(video_settings(wc.video)[stage])


def settings_document(wc):
    """What results/{video}/settings.yaml records: every resolved setting and its source."""
    extra = {"pack": Setting(pack_name(wc.video), "sample" if sample_value(wc.video, "pack") else "config"),
             "faces": Setting(faces_setting(wc.video), "sample" if sample_value(wc.video, "faces") else "config"),
             "schedule": stitch_settings.resolve_schedule(dict(SAMPLES.loc[wc.video].items()), config,
                                                          pack_meta(wc.video).get("defaults") or {}),
             "shard_frames": shard_frames_setting(wc.video)}
    return stitch_settings.report(video_settings(wc.video), extra)


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


def method_crops(video, method, edit):
    """Face crops a method produced for one edit, per shard (a pattern with {shard}): the recon stage for the
    _recon of stit and no_stitch (the PTI reconstruction they share), stitching for STIT's edits, the baseline
    stage for the others."""
    if edit == "_recon" and method in ("stit", "no_stitch"):
        path = R("recon", "{shard}.npz")
    elif method == "stit":
        path = R("stitching", "{edit}", "{shard}.npz")
    else:
        path = R("baseline", "{method}", "{edit}", "{shard}.npz")
    return path.replace("{video}", video).replace("{method}", method).replace("{edit}", edit)


def paste_inputs(wc):
    """The paste rule's inputs (one shard); mode detail also needs the method's reconstruction crops (the edit's
    change is the edited render minus them)."""
    shard = lambda pattern: pattern.format(video=wc.video, shard=wc.shard)
    inputs = {"video": video_path(wc), "crops": shard(method_crops(wc.video, wc.method, wc.edit)),
              "quads": R("align", "quads.npz").format(video=wc.video), "masks": shard(R("masks", "{shard}.npz"))}
    if setting(wc.video, "paste", "mode") == "detail":
        inputs["recon"] = shard(method_crops(wc.video, wc.method, "_recon"))
    if wc.edit != "_recon":  # the edit's per-frame envelope: frames where it is 0 stay the source's
        inputs["envelope"] = R("edit", "{edit}.json").format(video=wc.video, edit=wc.edit)
    return inputs


def recon_paste_inputs(wc):
    """paste_recon's inputs: paste's for the pseudo-edit _recon."""
    return paste_inputs(SimpleNamespace(video=wc.video, method=wc.method, edit="_recon", shard=wc.shard))


def baseline_inputs(wc):
    """e4e/no_stitch render the edited latents (the pivots for _recon); no_stitch also needs the PTI generators."""
    fmt = dict(video=wc.video, edit=wc.edit)
    inputs = {
        "crops": R("crop", "{shard}.npz").format(**fmt, shard=wc.shard),
        "latents": (shard_paths(R("invert", "{shard}.npy"), wc.video) if wc.edit == "_recon"
                    else R("edit", "{edit}.npy").format(**fmt)),
        "pack": pack_files(wc),
    }
    if wc.method == "no_stitch":
        inputs["generators"] = R("pti", "generators.safetensors").format(**fmt)
    return inputs


def all_outputs():
    out = [f"{RESULTS}/{video}/settings.yaml" for video in SAMPLES.index]
    for video in SAMPLES.index:
        for edit in EDITS:
            for method in config["methods"]:
                out.append(f"{RESULTS}/{video}/encode/{method}/{edit}.mp4")
                out.append(f"{RESULTS}/{video}/encode/{method}/side_by_side_{edit}.mp4")
    # metrics, figures, tables (evaluation.smk); review pages (review.smk)
    return out + evaluation_outputs(config["methods"]) + review_outputs()


# Evaluation (rules in evaluation.smk): the configured methods (target all) or all four (target paper).
EVAL_EDITS = ["_recon", *EDITS]  # _recon: the method's reconstruction (no edit)
BASE_EDITS = list(config["edits"])  # the named edits without their strength sweeps


def sweep_rows(edit):
    """[(multiplier, edit name)] of one swept edit, incl. the edit itself at 1."""
    rows = {1.0: edit}
    rows.update({float(m): sweep_name(edit, m) for m in config["sweeps"][edit]})
    return sorted(rows.items())


SWEEPS = {edit: sweep_rows(edit) for edit in config.get("sweeps", {})}


def sweep_method(methods):
    return "stit" if "stit" in methods else methods[0]


def scope_dir(paper):
    return "paper" if paper else ""


def figure_files(video, paper):
    """{name: path or [paths]} of one video's figures."""
    fig = lambda name: str(Path(RESULTS, video, "figures", scope_dir(paper), name))
    return {
        "comparison": [fig(f"comparison_{e}.png") for e in BASE_EDITS],
        "alignment": fig("alignment.png"),
        "identity": fig("identity.png"),
        "id_bars": fig("id_bars.png"),
        "sweeps": [fig(f"sweep_{e}.png") for e in SWEEPS],
    }


def table_files(paper):
    tab = lambda name: str(Path(RESULTS, "tables", scope_dir(paper), name))
    return {"metrics": tab("metrics.csv"), "methods": tab("methods.csv"), "timings": tab("timings.csv"),
            "html": tab("tables.html")}


def figure_outputs(paper):
    """The figures rule's outputs, marked for the report (one category per video)."""
    f = figure_files("{video}", paper)
    sub = "{video} (all methods)" if paper else "{video}"
    rep = lambda path, caption, **labels: report(path, caption=f"../report/{caption}.rst", category="Figures",
                                                 subcategory=sub, labels={"video": "{video}", **labels})
    return {
        "comparison": [rep(p, "comparison", figure="comparison", edit=e) for p, e in zip(f["comparison"], BASE_EDITS)],
        "alignment": rep(f["alignment"], "alignment", figure="alignment", edit="-"),
        "identity": rep(f["identity"], "identity", figure="identity curves", edit="all"),
        "id_bars": rep(f["id_bars"], "id_bars", figure="TL-ID / TG-ID", edit="all"),
        "sweeps": [rep(p, "sweep", figure="strength sweep", edit=e) for p, e in zip(f["sweeps"], SWEEPS)],
    }


def table_outputs(paper):
    t = table_files(paper)
    cat = "Tables (all methods)" if paper else "Tables"
    names = {"html": "overview (page)", "metrics": "metrics.csv", "methods": "methods.csv", "timings": "timings.csv"}
    return {k: report(v, caption=f"../report/table_{k}.rst", category=cat, labels={"table": names[k]})
            for k, v in t.items()}


def metric_path(video, method, edit, ext):
    return str(Path(RESULTS, video, "metrics", method, f"{edit}.{ext}"))


def encoded_path(video, method, edit):
    return str(Path(RESULTS, video, "encode", method, f"{edit}.mp4"))


def figure_params(methods):
    """What the figures script needs to find its inputs: method/edit -> file."""

    def params(wc):
        sm = sweep_method(methods)
        return {
            "methods": list(methods),
            "edits": EVAL_EDITS,
            "base_edits": BASE_EDITS,
            "metrics": {m: {e: metric_path(wc.video, m, e, "csv") for e in EVAL_EDITS} for m in methods},
            "summaries": {m: {e: metric_path(wc.video, m, e, "json") for e in EVAL_EDITS} for m in methods},
            "videos": {m: {e: encoded_path(wc.video, m, e) for e in BASE_EDITS} for m in methods},
            "sweep_method": sm,
            # rows of each strength sweep: the reconstruction (x0), then the swept strengths
            "sweeps": {e: [[mult, name, encoded_path(wc.video, sm, name)] for mult, name in [(0.0, "_recon"), *rows]]
                       for e, rows in SWEEPS.items()},
        }

    return params


def figure_inputs(methods):
    def inputs(wc):
        p = figure_params(methods)(wc)
        return {
            "video": video_path(wc),
            "info": R("frames", "info.json").format(video=wc.video),
            "quads": R("align", "quads.npz").format(video=wc.video),
            "metrics": [f for m in p["metrics"].values() for f in m.values()],
            "summaries": [f for m in p["summaries"].values() for f in m.values()],
            "videos": [f for m in p["videos"].values() for f in m.values()],
            "sweeps": [row[2] for rows in p["sweeps"].values() for row in rows],
        }

    return inputs


def work_files(video, method, edit):
    """Files whose stats record the generator work (stitch.work) behind one method's edited video: the method's
    crops (every shard) and, for the joint-PTI methods, PTI's stats."""
    files = shard_paths(method_crops(video, method, edit), video)
    if method in ("stit", "no_stitch"):
        files.append(R("pti", "stats.json").format(video=video))
    return files


def table_rows(methods):
    """(video, method, edit) of every row of the tables."""
    return [(v, m, e) for v in SAMPLES.index for m in methods for e in EVAL_EDITS]


def table_summaries(methods):
    return [metric_path(v, m, e, "json") for v, m, e in table_rows(methods)]


def table_inputs(methods):
    """Input function of the tables rule: the metrics summaries, the work records (per shard: planned after the
    frames checkpoint, whose info.json files are inputs too, as table_work reads the shards)."""

    def inputs(wc):
        rows = table_rows(methods)
        return {"summaries": table_summaries(methods), "infos": [R("frames", "info.json").format(video=v)
                                                                 for v in SAMPLES.index],
                "work": sorted({f for row in rows for f in work_files(*row)})}

    return inputs


def table_work(methods):
    """The tables rule's params: "video/method/edit" -> work_files, and the number of edits sharing PTI."""
    return lambda wc: {"files": {f"{v}/{m}/{e}": work_files(v, m, e) for v, m, e in table_rows(methods)},
                       "edits": len(EDITS)}


def evaluation_outputs(methods, paper=False):
    """Targets of the evaluation for one method selection: metrics, every video's figures, the tables."""
    out = table_summaries(methods)
    for video in SAMPLES.index:
        for v in figure_files(video, paper).values():
            out += v if isinstance(v, list) else [v]
    return out + list(table_files(paper).values())


def describe_inputs(wc):
    """The describe rule's inputs (one shard of one video x method x edit)."""
    shard = lambda pattern: pattern.format(video=wc.video, shard=wc.shard)
    return {
        "video": encoded_path(wc.video, wc.method, wc.edit),
        "source_video": video_path(wc),  # seam / sharpness columns (stitch.seam)
        "crops": shard(R("crop", "{shard}.npz")),
        "recon": shard(method_crops(wc.video, wc.method, "_recon")),
        "masks": shard(R("masks", "{shard}.npz")),
        "quads": R("align", "quads.npz").format(video=wc.video),
        "pack": pack_files(wc),
    }


def metrics_inputs(wc):
    return {
        "source": R("metrics", "source.npz").format(video=wc.video),
        "describe": shard_paths(R("describe", "{method}", "{edit}", "{shard}.npz"), wc.video, method=wc.method,
                                edit=wc.edit),
        "quads": R("align", "quads.npz").format(video=wc.video),
        "pack": pack_files(wc),
        **({"calibration": R("calibrate", "{edit}.json").format(video=wc.video, edit=wc.edit)}
           if wc.edit in config["edits"] and EDIT_TARGETS[wc.edit] else {}),  # target vs reached columns
    }


# Review pages (rules in review.smk; stitch.review)


def review_source(video):
    """The original the page plays: the input itself when it lies inside the results folder, else its H.264
    re-encode by rule review_source."""
    path = Path(SAMPLES.loc[video, "path"])
    if path.resolve().is_relative_to(Path(RESULTS).resolve()):
        return str(path)
    return R("review", "source.mp4").format(video=video)


def review_layout(wc):
    """stitch.review's layout of one video: the configured methods' edits, sweeps and their files."""
    methods = list(config["methods"])
    names = ["_recon", *EDITS]
    per = lambda f: {m: {e: f(m, e) for e in names} for m in methods}
    return {
        "methods": methods,
        "edits": ["_recon", *BASE_EDITS],
        "sweeps": {e: sorted([[0.0, "_recon"], *([m, n] for m, n in rows)]) for e, rows in SWEEPS.items()},
        "videos": per(lambda m, e: encoded_path(wc.video, m, e)),
        "side_by_side": {m: {e: str(Path(RESULTS, wc.video, "encode", m, f"side_by_side_{e}.mp4")) for e in EDITS}
                         for m in methods},
        "metrics": per(lambda m, e: metric_path(wc.video, m, e, "csv")),
        "index": f"{RESULTS}/review.html",
    }


def review_inputs(wc):
    layout = review_layout(wc)
    files = lambda key: [p for per in layout[key].values() for p in per.values()]
    return {"source": review_source(wc.video), "info": R("frames", "info.json").format(video=wc.video),
            "videos": files("videos"), "side_by_side": files("side_by_side"), "metrics": files("metrics")}


def review_outputs():
    """The default target's review pages: one per video and the index."""
    return [f"{RESULTS}/{video}/review.html" for video in SAMPLES.index] + [f"{RESULTS}/review.html"]
