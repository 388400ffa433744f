"""The SLURM profiles for real: the tiny pipeline through a throwaway one-node SLURM on localhost.

``slurm`` (module fixture) starts munged + slurmctld + slurmd from ``tests/slurm_cluster.py`` (installing
slurm-wlm and munge with apt-get when missing; skipped without root/apt, a failure under CI=true) and always
stops them again. The pipeline runs with ``workflow/profiles/slurm-ci``; every job's request is read back from
``scontrol show job -d`` (the cluster keeps finished jobs for an hour) and compared with what the rule and the
profile say. ``test_site_profile_dry_run`` checks the real site profile (``workflow/profiles/slurm``) without
a cluster.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from wf import CLIP_FRAMES, REPO, make_workdir

SITE_PROFILE = REPO / "workflow" / "profiles" / "slurm"
CI_PROFILE = REPO / "workflow" / "profiles" / "slurm-ci"
GPU_RULES = {"invert", "pti", "stitching", "recon", "baseline", "baseline_pti_frame"}
# the per-video pipeline of one edit (explicit targets: independent of what else `all` grows to include)
TARGETS = ["results/clip/encode/stit/older.mp4", "results/clip/encode/stit/side_by_side_older.mp4"]
SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))


def snakemake(workdir: Path, profile: Path, *args: str, env=None, timeout: float = 900) -> subprocess.CompletedProcess:
    cmd = [SNAKEMAKE, "--profile", str(profile), "-s", str(REPO / "Snakefile"), "-d", str(workdir), *args]
    env = {**(env or os.environ), "OMP_NUM_THREADS": "1"}
    return subprocess.run(cmd, cwd=workdir, capture_output=True, text=True, timeout=timeout, env=env)


def output(proc: subprocess.CompletedProcess) -> str:
    return proc.stdout + proc.stderr


def planned(dry_run_output: str) -> dict[str, dict]:
    """rule -> {mem_mb, runtime, gpu} as Snakemake resolved them (rule + profile), from a dry run. (Threads are not
    in it: a dry run caps them at its local cores; they are checked against the rule's text, ``declared``.)"""
    plan = {}
    for block in re.split(r"\n(?=\[[^\]]+\]\n(?:local)?(?:rule|checkpoint) \w+:)", dry_run_output):
        m = re.search(r"^(?:local)?(?:rule|checkpoint) (\w+):", block, re.M)
        if not m or m.group(1) == "all":
            continue
        res = re.search(r"^\s+resources: (.*)$", block, re.M)
        resources = dict(kv.split("=", 1) for kv in res.group(1).split(", ")) if res else {}
        plan[m.group(1)] = {
            "mem_mb": int(resources["mem_mb"]),
            "runtime": int(resources["runtime"]),
            "gpu": int(resources.get("gpu", 0)),
        }
    return plan


def declared(rule: str) -> dict[str, int]:
    """threads / runtime / gpu straight from the rule's text in workflow/rules/*.smk."""
    for smk in sorted((REPO / "workflow" / "rules").glob("*.smk")):
        m = re.search(rf"^(?:rule|checkpoint) {rule}:\n(.*?)(?=^\S|\Z)", smk.read_text(), re.M | re.S)
        if m:
            body = m.group(1)
            get = lambda pat, default=0: int(g.group(1)) if (g := re.search(pat, body)) else default  # noqa: E731
            return {"threads": get(r"threads:\s*(\d+)", 1), "runtime": get(r"runtime=(\d+)"),
                    "mem_mb": get(r"mem_mb=(\d+)"), "gpu": get(r"gpu=(\d+)")}
    raise AssertionError(f"rule {rule} not found in workflow/rules")


def slurm_minutes(limit: str) -> int:
    """SLURM TimeLimit ([D-]HH:MM:SS) -> minutes."""
    days, _, hms = limit.rpartition("-")
    h, m, s = (int(x) for x in hms.split(":"))
    return int(days or 0) * 1440 + h * 60 + m + (s > 0)


def slurm_mb(value: str) -> int:
    num, unit = re.fullmatch(r"([\d.]+)([KMGT]?)", value).groups()
    return round(float(num) * {"K": 1 / 1024, "": 1, "M": 1, "G": 1024, "T": 1024**2}[unit])


def job_rule(job: dict) -> str:
    """The rule of a SLURM job submitted by the plugin: its comment is rule_<rule>[_wildcards_<values>]."""
    return re.fullmatch(r"rule_(\w+?)(?:_wildcards_.*)?", job["Comment"]).group(1)


def job_gpus(job: dict) -> str | None:
    """The GPU request of a job, e.g. 'gres:gpu:1' (from --gpus=1) or 'gres:gpu:a100:1' (--gres), or None."""
    for key in ("TresPerJob", "TresPerNode", "TresPerTask"):
        if "gpu" in job.get(key, ""):
            return job[key]
    return None


def run_id(out: str) -> str:
    return re.search(r"SLURM run ID: (\S+)", out).group(1)


# -- the local cluster ------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def slurm():
    from slurm_cluster import LocalSlurm, Unavailable

    cluster = LocalSlurm(cpus=4, gpus=3)  # room for 3 GPU jobs at once (test 4: stitching shards in parallel)
    t0 = time.time()
    try:
        cluster.start()  # stops whatever it started when it fails
    except Unavailable as e:
        cluster.cleanup()
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true but no local SLURM: {e}")
        pytest.skip(f"no local SLURM: {e}")
    except BaseException:
        cluster.cleanup()
        raise
    print(f"\nlocal SLURM up in {time.time() - t0:.1f} s ({cluster.conf})")
    try:
        yield cluster
    finally:
        killed = cluster.stop()
        left = cluster.leftovers()
        cluster.cleanup()
        assert not left, f"processes of the local SLURM still running after stop: {left}"
        if killed:
            print(f"local SLURM: had to kill {killed}")


@pytest.fixture(scope="module")
def slurm_run(slurm, tmp_path_factory, shared_data):
    """The tiny pipeline (real 1.5 s clip, random 32 px pack) through SLURM with the slurm-ci profile."""
    wd = make_workdir(tmp_path_factory.mktemp("slurm_e2e"), tmp_path_factory.mktemp("slurm_cache"), shared_data)
    # the frames checkpoint first (a SLURM job too): the paste shards a dry run can plan come from its frame count
    first = snakemake(wd, CI_PROFILE, "results/clip/frames/info.json", env=slurm.env)
    assert first.returncode == 0, f"frames through SLURM failed:\n{output(first)[-4000:]}\n{slurm.logs()}"
    dry = snakemake(wd, CI_PROFILE, "--dry-run", *TARGETS, env=slurm.env, timeout=300)
    assert dry.returncode == 0, output(dry)[-4000:]
    plan = planned(output(dry))
    too_big = {r: p for r, p in plan.items() if p["mem_mb"] > slurm.mem_mb or declared(r)["threads"] > slurm.cpus}
    assert not too_big, f"the slurm-ci profile must scale these down to the CI node ({slurm.cpus} CPUs, {slurm.mem_mb} MB): {too_big}"
    t0 = time.time()
    proc = snakemake(wd, CI_PROFILE, *TARGETS, env=slurm.env)
    seconds = time.time() - t0
    assert proc.returncode == 0, f"snakemake through SLURM failed ({proc.returncode}):\n{output(proc)[-8000:]}\n{slurm.logs()}"
    return {"wd": wd, "plan": plan, "out": output(proc), "seconds": seconds, "jobs": slurm.jobs(run_id(output(proc)))}


# -- 1. the pipeline through SLURM, with the requests the rules and the profile ask for -------------------------
@pytest.mark.slurm
@pytest.mark.slow
def test_pipeline_through_slurm_requests_what_rules_say(slurm_run):
    from stitch.video import probe

    jobs, plan = slurm_run["jobs"], slurm_run["plan"]
    profile = yaml.safe_load((CI_PROFILE / "config.yaml").read_text())
    by_rule: dict[str, list[dict]] = {}
    for job in jobs:
        by_rule.setdefault(job_rule(job), []).append(job)
    assert set(by_rule) == set(plan), f"SLURM jobs {sorted(by_rule)} vs planned rules {sorted(plan)}"
    assert {"invert", "pti", "stitching", "recon"} <= set(by_rule)
    assert len(jobs) == len(re.findall(r"has been submitted with SLURM jobid", slurm_run["out"]))
    summary = []
    for rule, rule_jobs in sorted(by_rule.items()):
        want = plan[rule]
        # what Snakemake resolved is the rule's own threads/runtime/gpu and the profile's (scaled) memory
        rule_text = declared(rule)
        want = {**want, "threads": rule_text["threads"]}
        assert (want["runtime"], want["gpu"]) == (rule_text["runtime"], rule_text["gpu"]), rule
        assert want["mem_mb"] == profile["set-resources"][rule]["mem_mb"], rule
        for job in rule_jobs:
            jid = job["JobId"]
            assert job["JobState"] == "COMPLETED" and job["ExitCode"] == "0:0", (rule, jid, job["JobState"])
            assert int(job["NumCPUs"]) == int(job["CPUs/Task"]) == want["threads"], (rule, jid, job["NumCPUs"])
            assert slurm_mb(job["MinMemoryNode"]) == want["mem_mb"], (rule, jid, job["MinMemoryNode"])
            assert slurm_minutes(job["TimeLimit"]) == want["runtime"], (rule, jid, job["TimeLimit"])
            gpus = job_gpus(job)
            if rule in GPU_RULES:
                assert gpus == "gres:gpu:1" and job.get("JOB_GRES") == "gpu:1", (rule, jid, gpus)
            else:
                assert gpus is None and "gpu" not in job["TRES"] and job.get("JOB_GRES", "(null)") == "(null)", (rule, jid, gpus)
            summary.append(f"{jid} {rule}: cpus={job['NumCPUs']} mem={job['MinMemoryNode']} time={job['TimeLimit']} gpus={gpus}")
    print(f"\n{len(jobs)} SLURM jobs in {slurm_run['seconds']:.0f} s:\n" + "\n".join(summary))

    wd = slurm_run["wd"]
    # the GPU jobs saw the fake GPU (CUDA_VISIBLE_DEVICES=0) and still ran on the CPU with the rule's threads
    pti_log = (wd / "results" / "clip" / "logs" / "pti.log").read_text()
    assert f"rule pti on cpu with {declared('pti')['threads']} threads" in pti_log, pti_log[-2000:]
    info = probe(wd / TARGETS[0])
    assert info.num_frames == CLIP_FRAMES and info.has_audio


# -- 2. a failing job: non-zero exit, the job reported failed; fixed, a rerun completes --------------------------
@pytest.mark.slurm
@pytest.mark.slow
def test_failed_job_is_reported_and_rerun_completes(slurm, slurm_run):
    wd = slurm_run["wd"]
    targets = ["results/clip/edit/smile.npy"]  # a new edit's latents: one job, on top of the finished run
    cfg_path = wd / "config" / "config.yaml"
    cfg = yaml.safe_load(cfg_path.read_text())
    cfg["edits"]["smile"] = {"smile": 3}
    cfg_path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    directions = wd / "pack" / "directions.safetensors"
    good = directions.read_bytes()
    directions.write_bytes(good[:-64] + bytes(64))  # corrupt the pack's edit directions: `edit` fails

    t0 = time.time()
    proc = snakemake(wd, CI_PROFILE, *targets, env=slurm.env)
    failed_seconds = time.time() - t0
    out = output(proc)
    assert proc.returncode != 0, out[-4000:]
    assert "Error in rule edit:" in out, out[-4000:]
    m = re.search(r"SLURM-job '(\d+)' failed, SLURM status is: '(\w+)'", out)
    assert m and m.group(2) == "FAILED", out[-4000:]
    assert "directions.safetensors is corrupt (sha256 mismatch)" in out, out[-4000:]  # the rule's log, shown
    jobs = slurm.jobs(run_id(out))
    assert [(j["JobId"], job_rule(j), j["JobState"], j["ExitCode"]) for j in jobs] == [(m.group(1), "edit", "FAILED", "1:0")]
    assert not (wd / "results" / "clip" / "edit" / "smile.npy").exists()

    directions.write_bytes(good)  # fix the cause
    t0 = time.time()
    proc = snakemake(wd, CI_PROFILE, *targets, env=slurm.env)
    assert proc.returncode == 0, output(proc)[-8000:]
    jobs = slurm.jobs(run_id(output(proc)))
    assert [job_rule(j) for j in jobs] == ["edit"], output(proc)[-6000:]
    assert all(j["JobState"] == "COMPLETED" for j in jobs)
    print(f"\nfailing run {failed_seconds:.0f} s (SLURM job {m.group(1)} edit FAILED), fixed rerun "
          f"{time.time() - t0:.0f} s (SLURM job {jobs[0]['JobId']} edit {jobs[0]['JobState']})")
    dry = snakemake(wd, CI_PROFILE, "--dry-run", *targets, env=slurm.env, timeout=300)
    assert dry.returncode == 0 and "Nothing to be done" in output(dry), output(dry)[-3000:]


# -- 4. one edit's stitching spread over shard jobs that run at the same time ------------------------------------
def job_seconds(stamp: str) -> float:
    """A SLURM StartTime/EndTime (2026-12-01T06:30:01) in seconds."""
    from datetime import datetime

    return datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S").timestamp()


@pytest.mark.slurm
@pytest.mark.slow
def test_stitching_shards_run_in_parallel_and_equal_the_local_run(slurm, tmp_path_factory, shared_data):
    """The 33-frame clip in shards of 11: the edit's stitching is 3 SLURM jobs (one per shard), at least 2 of them
    running at the same time (their StartTime..EndTime from scontrol overlap), and the stitched crops and the
    edited video equal those of a local run (`--cores 2`) byte for byte. The stages before stitching (and the
    reconstruction video) run locally first, once for both runs: each job through SLURM costs its submission and
    status polls, and they are not what is compared."""
    import shutil

    from wf import run_snakemake

    stitching = yaml.safe_load((REPO / "config" / "config.yaml").read_text())["stitching"]
    extra = {"shard_frames": 11, "stitching": {**stitching, "max_steps": 40, "border_threshold": 0.0}}  # ~10 s/job
    wd = make_workdir(tmp_path_factory.mktemp("slurm_shards"), tmp_path_factory.mktemp("shards_cache"), shared_data,
                      extra_config=extra)
    run_snakemake(wd, "results/clip/edit/older.npy", "results/clip/encode/stit/_recon.mp4")
    local = tmp_path_factory.mktemp("local_shards") / "wd"
    shutil.copytree(wd, local, symlinks=True)
    target = ["results/clip/encode/stit/older.mp4"]
    proc = snakemake(wd, CI_PROFILE, *target, env=slurm.env)
    assert proc.returncode == 0, f"sharded run through SLURM failed:\n{output(proc)[-8000:]}\n{slurm.logs()}"
    jobs = slurm.jobs(run_id(output(proc)))
    assert not {"detect", "crop", "masks", "invert", "pti", "edit"} & {job_rule(j) for j in jobs}, jobs  # ran locally
    stitching = [j for j in jobs if job_rule(j) == "stitching"]
    assert len(stitching) == 3 and all(j["JobState"] == "COMPLETED" for j in stitching), stitching
    spans = sorted((job_seconds(j["StartTime"]), job_seconds(j["EndTime"])) for j in stitching)
    overlapping = [(a, b) for i, a in enumerate(spans) for b in spans[i + 1 :] if b[0] < a[1]]
    print(f"\nstitching shard jobs (start, end): {[(j['JobId'], j['StartTime'], j['EndTime']) for j in stitching]}")
    assert overlapping, f"no two stitching shard jobs ran at the same time: {spans}"

    run_snakemake(local, *target)
    for rel in [*(f"stitching/older/000{k}.npz" for k in range(3)), "encode/stit/older.mp4"]:
        a, b = wd / "results" / "clip" / rel, local / "results" / "clip" / rel
        assert a.read_bytes() == b.read_bytes(), rel


# -- 3. the real site profile, without a cluster ----------------------------------------------------------------
def test_site_profile_dry_run(tmp_path):
    """`--profile workflow/profiles/slurm` parses, selects the SLURM executor settings and keeps the rules' real
    requests (no scaling): a dry run on the embedded demo pack and a placeholder video."""
    (tmp_path / "config").mkdir()
    (tmp_path / "in.mp4").write_bytes(b"")  # a dry run only needs the input to exist
    cfg = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    cfg.update(samples="config/samples.tsv", results="results", pack="demo", edits={"older": {"age": 8}}, sweeps={})
    (tmp_path / "config" / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    (tmp_path / "config" / "samples.tsv").write_text(f"sample\tpath\nclip\t{tmp_path / 'in.mp4'}\n")
    frames = tmp_path / "results" / "clip" / "frames"  # the frames checkpoint's outputs, as if it had run: the
    frames.mkdir(parents=True)  # per-shard jobs are planned from its frame count (1 shard)
    (frames / "info.json").write_text('{"num_frames": 10}')
    (frames / "audio.wav").write_bytes(b"")
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLURM_")}
    proc = snakemake(tmp_path, SITE_PROFILE, "--dry-run", env=env, timeout=300)  # the default target: every rule
    out = output(proc)
    assert proc.returncode == 0, out[-4000:]
    assert f"Using profile {SITE_PROFILE}" in out
    plan = planned(out)
    assert {"detect", "crop", "invert", "pti", "stitching", "recon", "edit", "paste", "encode"} <= set(plan), sorted(plan)
    for rule, want in plan.items():
        rule_text = declared(rule)
        assert want == {k: rule_text[k] for k in ("mem_mb", "runtime", "gpu")}, (rule, want, rule_text)
    assert all(plan[r]["gpu"] == 1 for r in plan if r in GPU_RULES) and not any(
        plan[r]["gpu"] for r in plan if r not in GPU_RULES)
    site = yaml.safe_load((SITE_PROFILE / "config.yaml").read_text())
    assert site["executor"] == "slurm" and site["slurm-status-command"] == "sacct"
    assert "resources" not in site, "a global --resources gpu=N would throttle GPU jobs the cluster schedules"
