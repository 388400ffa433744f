"""The demo-pack training chain (workflow/rules/zoo.smk) stays out of the pipeline's graph.

The pipeline reads the shipped files (resources/models/demo/, resources/probes/); only rule zoo_publish writes them
and its declared output is a receipt under results/zoo/, so even a forced rerun of everything (`-F`, and the jobs
planned after the frames checkpoint) schedules no training. Dry runs only (nothing is built) in a work dir with the demo pack around a 1.5 s clip of talk_1.
"""

from __future__ import annotations

import re
from collections import Counter

import pytest
import yaml

from wf import REPO, make_workdir, run_snakemake

ZOO_RULES = {"zoo_data", "zoo_train", "zoo_adversarial", "zoo_directions", "demo_pack", "zoo_probe", "zoo_publish"}
PROBE_FILES = {str(REPO / "resources" / "probes" / f"attributes.{ext}") for ext in ("safetensors", "json")}


@pytest.fixture(scope="module")
def workdir(tmp_path_factory, shared_data):
    zoo = yaml.safe_load((REPO / "config" / "config.yaml").read_text())["zoo"]
    zoo["utkface_tar"] = str(shared_data / "faces" / "utkface.tar")  # the zoo's input exists: only the graph decides
    return make_workdir(tmp_path_factory.mktemp("zoo_graph"), tmp_path_factory.mktemp("zoo_graph_cache"), shared_data,
                        extra_config={"pack": "demo", "zoo": zoo})


def dry_run(workdir, *args) -> tuple[Counter, dict[str, list[set[str]]]]:
    """Jobs per rule of a dry run and, per rule, each job's input files."""
    out = run_snakemake(workdir, "--dry-run", *args).stdout
    jobs: Counter = Counter()
    inputs: dict[str, list[set[str]]] = {}
    for block in re.split(r"\n(?=(?:local)?rule \w+:)", out):
        m = re.match(r"(?:local)?rule (\w+):", block.strip())
        if m:
            jobs[m.group(1)] += 1
            files = re.search(r"^\s*input: (.*)$", block, re.M)
            inputs.setdefault(m.group(1), []).append(set(files.group(1).split(", ")) if files else set())
    return jobs, inputs


@pytest.fixture(scope="module")
def forced(workdir):
    """`-F` of the default target: a forced rerun of everything, which a dry run plans up to the frames checkpoint
    (the per-shard jobs come from its frame count); then, the checkpoint run, the plan of everything after it."""
    jobs, _ = dry_run(workdir, "-F")  # (its jobs after the checkpoint have only the checkpoint's file as inputs)
    run_snakemake(workdir, "results/clip/frames/info.json")
    after, inputs = dry_run(workdir)
    return jobs + after, inputs


def test_forced_rerun_of_default_target_schedules_no_training(forced):
    jobs, _ = forced
    assert jobs["all"] >= 1 and jobs["pti"] >= 1 and jobs["metrics"] >= 1, jobs  # the whole pipeline is planned
    assert not ZOO_RULES & set(jobs), f"training scheduled by `snakemake -F`: {sorted(ZOO_RULES & set(jobs))}"


def test_evaluation_reads_the_shipped_probe(forced):
    _, inputs = forced
    pack = str(REPO / "resources" / "models" / "demo" / "pack.yaml")
    for rule in ("describe_source", "describe"):
        assert inputs[rule] and all(PROBE_FILES | {pack} <= files for files in inputs[rule]), (rule, inputs[rule])


def test_publish_schedules_the_training_chain(workdir):
    jobs, inputs = dry_run(workdir, "zoo_publish")
    assert dict(jobs) == {rule: 1 for rule in ZOO_RULES}, jobs
    assert inputs["zoo_publish"][0] == {
        f"results/zoo/{stage}/{name}" for stage, names in (
            ("pack", ("pack.yaml", "generator.safetensors", "generator.json", "encoder.safetensors", "encoder.json",
                      "directions.safetensors")),
            ("probe", ("attributes.safetensors", "attributes.json"))) for name in names}
