"""Bad inputs a new user may give end with ONE line that names the input and what to do (issue #14).

A corpus of broken configs, samples tables and model packs on the tiny workflow (tests/wf.py). Each case asserts:
non-zero exit, exactly one ``stitch error:`` line and it matches the expected text, no "Traceback" anywhere in the
output, and nothing under results/ that a rerun would take as done. Most cases stop while the Snakefile is parsed
(``snakemake -n``, stitch.preflight); a corrupt pack file stops the video's first job (settings verifies the pack);
a full or read-only results disk is a small tmpfs (mounted as root; the test skips where mount is refused);
memory exhaustion raises a real MemoryError in a rule script's setup (stitch.smk).
"""

from __future__ import annotations

import math
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from wf import REPO, make_workdir, run_snakemake

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def base(tmp_path_factory, shared_data):
    """A valid tiny work dir (one edit: older = age 8) that each case copies and breaks."""
    wd = make_workdir(tmp_path_factory.mktemp("base"), tmp_path_factory.mktemp("cache"), shared_data)
    assert run_snakemake(wd, "--dry-run").returncode == 0
    return wd


def copy_case(base: Path, dst: Path) -> Path:
    """A copy of the base work dir whose config points at its own copy of the pack."""
    shutil.copytree(base, dst)
    edit_config(dst, lambda c: c.update(pack=str(dst / "pack")))
    return dst


# -- breaking one input ----------------------------------------------------------------------------------------------
def edit_config(wd: Path, change) -> None:
    path = wd / "config" / "config.yaml"
    cfg = yaml.safe_load(path.read_text())
    change(cfg)
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))


def config(change):
    return lambda wd: edit_config(wd, change)


def samples(text: str):
    return lambda wd: (wd / "config" / "samples.tsv").write_text(text)


def manifest(change):
    """Edit pack.yaml as text (so YAML's own reading of what a user typed is what the workflow sees)."""
    def apply(wd):
        path = wd / "pack" / "pack.yaml"
        path.write_text(change(path.read_text()))
    return apply


def flip_byte(name: str, offset: int):
    def apply(wd):
        path = wd / "pack" / name
        data = bytearray(path.read_bytes())
        data[offset] ^= 0x01
        path.write_bytes(bytes(data))
    return apply


def second_configfile(text: str):
    def apply(wd):
        (wd / "config" / "more.yaml").write_text(text)
    return apply


def first_hash(text: str, new) -> str:
    return re.sub(r"sha256: ([0-9a-f]{64})", lambda m: f"sha256: {new(m[1])}", text, count=1)


def set_older(spec):
    return config(lambda c: c["edits"].update(older=spec))


ROW = "clip\tinputs/clip.mp4"
PARSE_CASES = {  # id: (break the work dir, extra snakemake args ({wd}: the work dir), expected text of the one line)
    "unknown key": (config(lambda c: c["pti"].update(lrr=1e-3)), (),
                    r"config/config.yaml: unknown key 'lrr' in pti; did you mean 'lr'\? known keys: epochs, lr"),
    "misspelt top-level key": (config(lambda c: c.update(edtis=c.pop("edits"))), (),
                               r"config/config.yaml: unknown key 'edtis' at the top level; did you mean 'edits'\?"),
    "wrong type": (config(lambda c: c["pti"].update(epochs="many")), (),
                   r"config/config.yaml: pti.epochs: 'many' is not of type 'integer', 'null'; fix it as the comments"),
    "negative value": (config(lambda c: c["stitching"].update(max_steps=-1)), (),
                       r"config/config.yaml: stitching.max_steps: -1 is less than the minimum of 0; fix it"),
    "unknown method": (config(lambda c: c.update(methods=["stit", "magic"])), (),
                       r"config/config.yaml: methods\[1\]: 'magic' is not one of \['stit', 'no_stitch'"),
    "NaN edit factor": (set_older({"age": math.nan}), (),
                        r"config/config.yaml: edits.older.age = nan is not a finite number; write a finite number"),
    "inf stage setting": (config(lambda c: c["pti"].update(lr=math.inf)), (),
                          r"config/config.yaml: pti.lr = inf is not a finite number; write a finite number"),
    "inf sweep multiplier": (config(lambda c: c.update(sweeps={"older": [0.5, -math.inf]})), (),
                             r"config/config.yaml: sweeps.older\[1\] = -inf is not a finite number"),
    "sweep of unknown edit": (config(lambda c: c.update(sweeps={"oldr": [2]})), (),
                              r"config/config.yaml: sweeps.oldr: no edit named 'oldr' under edits:; "
                              r"sweep one of older"),
    "unknown edit direction": (set_older({"agee": 8}), (),
                               r"config/config.yaml: edits.older uses direction 'agee', which model pack .*/pack does "
                               r"not have; did you mean 'age'\? known directions: age, gender, smile"),
    "unknown target": (set_older({"age_yeras": 15}), (),
                       r"config/config.yaml: edits.older uses direction 'age_yeras', which model pack .*/pack does not "
                       r"have; did you mean 'age_years'\? known directions: age, gender, smile; "
                       r"targets: age_years, gender, smile_score$"),
    "gender target not male or female": (set_older({"gender": "man"}), (),
                                         r"config/config.yaml: edits.older.gender = 'man' is not a gender target; "
                                         r"write gender: male or gender: female \(or a number: a raw factor\)$"),
    "inf target": (set_older({"age_years": math.inf}), (),
                   r"config/config.yaml: edits.older.age_years = inf is not a finite number; write a finite number$"),
    "target not a number": (set_older({"smile_score": "big"}), (),
                            r"config/config.yaml: edits.older.smile_score = 'big' is not a number; write the smile "
                            r"score change as a number"),
    "target and raw factor of one direction": (set_older({"age": 8, "age_years": 15}), (),
                                               r"config/config.yaml: edits.older sets both age \(a raw factor\) and "
                                               r"age_years \(a target for direction age\); keep one of them$"),
    "empty edits": (config(lambda c: c.update(edits={})), (),
                    r"config/config.yaml: edits is empty, so nothing would be produced; name at least one edit"),
    "empty edits in a second configfile": (second_configfile("edits: {}\n"), ("--configfile", "{wd}/config/more.yaml"),
                                           r"config/more.yaml: edits: \{\} removes nothing \(Snakemake merges config "
                                           r"files key by key.*list the edits you want under edits: in "
                                           r"config/config.yaml"),
    "duplicate sample names": (samples(f"sample\tpath\n{ROW}\n{ROW}\n"), (),
                               r"config/samples.tsv: duplicate sample names \['clip'\]; give each row its own name"),
    "odd sample name": (samples("sample\tpath\nmy clip\tinputs/clip.mp4\n"), (),
                        r"config/samples.tsv, sample 'my clip': column 'sample' = 'my clip': .* use letters, digits"),
    "misspelt path column": (samples("sample\tpaht\nclip\tinputs/clip.mp4\n"), (),
                             r"config/samples.tsv: needs the columns 'sample' and 'path' \(tab-separated header\), "
                             r"found \['sample', 'paht'\]"),
    "missing video": (samples("sample\tpath\nclip\tinputs/clp.mp4\n"), (),
                      r"config/samples.tsv, sample 'clip': path 'inputs/clp.mp4' does not exist; give the video's"),
    "unknown samples column": (samples(f"sample\tpath\tpti_epoch\n{ROW}\t3\n"), (),
                               r"config/samples.tsv, sample 'clip': unknown column 'pti_epoch'; known columns: .*; "
                               r"did you mean 'pti_epochs'\?"),
    "wrong cell type": (samples(f"sample\tpath\tpti_epochs\n{ROW}\tten\n"), (),
                        r"config/samples.tsv, sample 'clip': column 'pti_epochs' = 'ten' is not an integer; write an integer"),
    "inf cell": (samples(f"sample\tpath\tpti_lr\n{ROW}\tinf\n"), (),
                 r"config/samples.tsv, sample 'clip': pti.lr = inf is not a finite number"),
    "missing samples table": (config(lambda c: c.update(samples="config/videos.tsv")), (),
                              r"samples table config/videos.tsv not found \(config key samples:\); create it"),
    "unknown schedule": (config(lambda c: c.update(schedule="quick")), (),
                         r"config/config.yaml: schedule: 'quick' is not one of \['reference', 'fast', None\]"),
    "unknown schedule in samples": (samples(f"sample\tpath\tschedule\n{ROW}\tfastest\n"), (),
                                    r"config/samples.tsv \(sample clip\): schedule 'fastest' is not one of "
                                    r"reference, fast; use one of them$"),
    "zero shard_frames": (config(lambda c: c.update(shard_frames=0)), (),
                          r"config/config.yaml: shard_frames: 0 is less than the minimum of 1"),
    "fractional shard_frames": (config(lambda c: c.update(shard_frames=2.5)), (),
                                r"config/config.yaml: shard_frames: 2.5 is not of type 'integer', 'null'"),
    "negative shard_frames in samples": (samples(f"sample\tpath\tshard_frames\n{ROW}\t-5\n"), (),
                                         r"config/samples.tsv \(sample clip, column shard_frames\): shard_frames = "
                                         r"'-5' is not a whole number of frames >= 1; give e.g. 200 or leave it empty$"),
    "text shard_frames in samples": (samples(f"sample\tpath\tshard_frames\n{ROW}\tmany\n"), (),
                                     r"config/samples.tsv \(sample clip, column shard_frames\): shard_frames = "
                                     r"'many' is not a whole number"),
    "unknown pack": (config(lambda c: c.update(pack="ffhd")), (),
                     r"config/config.yaml: model pack 'ffhd' not found .*; set pack: to one of demo or to a pack"),
    "unknown pack in samples": (samples(f"sample\tpath\tpack\n{ROW}\tdemoo\n"), (),
                                r"config/samples.tsv, sample 'clip', column pack: model pack 'demoo' not found"),
    "all-digit hash": (manifest(lambda t: first_hash(t, lambda h: "0" * 64)), (),
                       r"pack/pack.yaml: files.generator.sha256 is the number 0, not a string of 64 lower-case hex "
                       r"digits \(YAML reads an unquoted all-digit hash as a number\); write it quoted"),
    "truncated hash": (manifest(lambda t: first_hash(t, lambda h: h[:40])), (),
                       r"pack/pack.yaml: files.generator.sha256 is '[0-9a-f]{40}', not a string of 64 lower-case "
                       r"hex digits; write it quoted"),
    "missing pack file": (lambda wd: (wd / "pack" / "encoder.safetensors").unlink(), (),
                          r"pack 'tiny': missing .*/pack/encoder.safetensors \(files.encoder\)"),
    "pack.yaml not YAML": (manifest(lambda t: t.replace("files:", "files: [", 1)), (),
                           r"pack/pack.yaml: invalid YAML at line \d+ \(while parsing a flow sequence\); fix the file"),
    "NaN pack default": (manifest(lambda t: t.replace("lr: 0.0003", "lr: .nan", 1)), (),
                         r"pack/pack.yaml: pti.lr = nan is not a finite number"),
    "unreadable directions header": (flip_byte("directions.safetensors", 3), (),
                                     r"pack 'tiny': .*/pack/directions.safetensors is unreadable \(.*header"),
}

JOB_CASES = {  # pack corruption that only hashing finds: the video's first job (settings) verifies the pack
    "flipped byte in generator": (flip_byte("generator.safetensors", -7),
                                  r"pack 'tiny': .*/pack/generator.safetensors is corrupt \(sha256 mismatch\)"),
    "flipped byte in directions data": (flip_byte("directions.safetensors", -5),
                                        r"pack 'tiny': .*/pack/directions.safetensors is corrupt \(sha256 mismatch\)"),
    "wrong manifest hash": (manifest(lambda t: first_hash(t, lambda h: "0123456789abcdef" * 4)),
                            r"pack 'tiny': .*/pack/generator.safetensors is corrupt \(sha256 mismatch\)"),
}


def one_line(proc: subprocess.CompletedProcess) -> str:
    """The run failed with exactly one ``stitch error:`` line and no traceback; returns that line."""
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out[-3000:]
    assert "Traceback" not in out, out[-6000:]
    lines = [line for line in out.splitlines() if line.startswith("stitch error: ")]
    assert len(lines) == 1, out[-4000:]
    return lines[0].removeprefix("stitch error: ")


def done_files(wd: Path) -> list[str]:
    """Files under results/ a rerun could take as done (logs and benchmarks are records, not outputs)."""
    res = wd / "results"
    return sorted(str(p.relative_to(res)) for p in res.rglob("*") if p.is_file()
                  and p.relative_to(res).parts[1:2] not in (("logs",), ("benchmarks",))) if res.exists() else []


@pytest.mark.parametrize("case", list(PARSE_CASES))
def test_parse_time(case, base, tmp_path):
    breaks, args, expected = PARSE_CASES[case]
    wd = copy_case(base, tmp_path / "wd")
    breaks(wd)
    line = one_line(run_snakemake(wd, "--dry-run", *(a.format(wd=wd) for a in args), check=False))
    assert re.search(expected, line), line
    assert not (wd / "results").exists()


@pytest.mark.parametrize("case", list(JOB_CASES))
def test_first_job(case, base, tmp_path):
    breaks, expected = JOB_CASES[case]
    wd = copy_case(base, tmp_path / "wd")
    breaks(wd)
    assert run_snakemake(wd, "--dry-run", check=False).returncode == 0  # the header and names are fine
    line = one_line(run_snakemake(wd, "results/clip/settings.yaml", check=False))
    assert re.search(expected + r"; see the pack's README$", line), line
    assert done_files(wd) == []


@pytest.fixture
def disk_wd(base, tmp_path):
    """A case work dir whose results/ is a 256 KiB tmpfs (unmounted afterwards)."""
    wd = copy_case(base, tmp_path / "wd")
    mnt = wd / "results"
    mnt.mkdir()
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mnt)], capture_output=True,
                          text=True)
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({proc.stderr.strip()}): needs root")
    try:
        yield wd
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=True)


def fill(folder: Path) -> None:
    """Write a file until the file system is full."""
    with open(folder / "filler", "wb", buffering=0) as f:
        try:
            while True:
                f.write(b"\0" * 4096)
        except OSError as e:
            assert e.errno == 28, e


def test_full_disk(disk_wd):
    fill(disk_wd / "results")
    line = one_line(run_snakemake(disk_wd, "results/clip/settings.yaml", check=False))
    assert line == ("rule settings: no space left on device while writing results/clip/settings.yaml; free space or "
                    "set results: in config/config.yaml to a folder on another disk")
    (disk_wd / "results" / "filler").unlink()
    assert done_files(disk_wd) == [] and not list((disk_wd / "results").rglob(".*partial*"))


def test_full_disk_safetensors_error_named(disk_wd):
    """safetensors reports a full disk as its own error quoting the OS message: still one line naming the file."""
    import torch
    from safetensors.torch import save_file

    from stitch import smk

    fill(disk_wd / "results")
    target = disk_wd / "results" / "clip" / "pti" / "generators.safetensors"
    target.parent.mkdir(parents=True)
    smk._JOB.update(rule="pti", outputs=[str(target)], mem_mb=8000)
    with pytest.raises(Exception) as err:
        save_file({"w": torch.zeros(100_000)}, str(target))
    assert not isinstance(err.value, OSError)  # not an errno: the message is all there is
    assert smk.resource_error_line(err.value) == (
        f"rule pti: no space left on device while writing {target}; free space or set results: in "
        "config/config.yaml to a folder on another disk")


def test_read_only_results(disk_wd):
    subprocess.run(["mount", "-o", "remount,ro", str(disk_wd / "results")], check=True)
    line = one_line(run_snakemake(disk_wd, "results/clip/settings.yaml", check=False))
    assert line == (f"{disk_wd / 'results'} is on a read-only file system, so results/clip/settings.yaml cannot be "
                    "written; set results: in config/config.yaml to a writable folder")
    assert not (disk_wd / ".snakemake" / "locks").exists() or not any((disk_wd / ".snakemake" / "locks").iterdir())


@pytest.mark.parametrize("allocate", ["numpy.ones(2**62, numpy.uint8)", "torch.empty(2**50, dtype=torch.uint8)"],
                         ids=["MemoryError", "torch allocator"])
def test_out_of_memory(tmp_path, allocate):
    """A rule script that runs out of memory ends with one line naming the rule (stitch.smk's exception hook)."""
    code = (f"import sys; sys.path.insert(0, {str(REPO)!r})\n"
            "from types import SimpleNamespace\nimport numpy, torch\nfrom stitch.smk import setup\n"
            f"setup(SimpleNamespace(rule='edit', output=[{str(tmp_path / 'edit.npy')!r}], "
            f"log=[{str(tmp_path / 'edit.log')!r}], threads=1, resources={{'mem_mb': 1000}}))\n{allocate}\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    line = one_line(proc)
    assert line.startswith("rule edit: out of memory (resources: mem_mb=1000); run fewer jobs at once"), line
    assert line in (tmp_path / "edit.log").read_text()
