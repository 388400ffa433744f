# Evaluation: identity coherence (TL-ID/TG-ID), identity distance, attribute probes and reconstruction quality per
# video x method x edit (rule metrics), figures per video, tables over all videos, the report and the `paper` target.
#
# Two method selections: the configured `methods` (default target `all`: results/{video}/figures/*.png,
# results/tables/*.csv) and all four methods (target `paper`: results/{video}/figures/paper/*.png,
# results/tables/paper/*.csv). Helper functions: common.smk (section Evaluation).


rule describe_source:
    """One shard of the source frames: identity descriptors and attribute probes (stitch.describe), once per video
    (shared by all edits)."""
    input:
        video=video_path,
        info=R("frames", "info.json"),
        pack=pack_files,
        **PROBE,
    output:
        describe=R("describe", "source", "{shard}.npz"),
    log:
        R("logs", "describe_source_{shard}.log"),
    benchmark:
        R("benchmarks", "describe_source_{shard}.tsv")
    wildcard_constraints:
        shard=SHARD,
    params:
        pack=lambda wc: pack_dir(wc.video),
        detect_long_side=lambda wc: setting(wc.video, "landmarks", "detect_long_side"),
        shard_frames=lambda wc: shard_frames(wc.video),
    threads: 1
    resources:
        mem_mb=4000,
        runtime=60,
    conda:
        "../../envs/stitch.yaml"
    script:
        "../../scripts/describe_source.py"


rule metrics_source:
    """The source's describe shards joined: descriptors and attributes of every source frame."""
    input:
        shards=shard_files(R("describe", "source", "{shard}.npz")),
    output:
        source=R("metrics", "source.npz"),
    log:
        R("logs", "metrics_source.log"),
    benchmark:
        R("benchmarks", "metrics_source.tsv")
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    conda:
        "../../envs/stitch.yaml"
    script:
        "../../scripts/metrics_source.py"


rule describe:
    """One shard of a method's encoded edit: identity descriptors and attribute probes of its frames, the method's
    reconstruction quality at crop resolution and the seam columns (stitch.describe)."""
    input:
        unpack(describe_inputs),
        info=R("frames", "info.json"),
        **PROBE,
    output:
        describe=R("describe", "{method}", "{edit}", "{shard}.npz"),
    log:
        R("logs", "describe_{method}_{edit}_{shard}.log"),
    benchmark:
        R("benchmarks", "describe_{method}_{edit}_{shard}.tsv")
    wildcard_constraints:
        shard=SHARD,
    params:
        pack=lambda wc: pack_dir(wc.video),
        feather=lambda wc: setting(wc.video, "paste", "feather"),
        detect_long_side=lambda wc: setting(wc.video, "landmarks", "detect_long_side"),
        shard_frames=lambda wc: shard_frames(wc.video),
    threads: 1
    resources:
        mem_mb=4000,
        runtime=60,
    conda:
        "../../envs/stitch.yaml"
    script:
        "../../scripts/describe.py"


rule metrics:
    """TL-ID/TG-ID, identity distance, probe deltas, seam error and sharpness per frame + the method's
    reconstruction PSNR/SSIM(/LPIPS), from the describe shards."""
    input:
        unpack(metrics_inputs),
    output:
        frames=R("metrics", "{method}", "{edit}.csv"),
        summary=R("metrics", "{method}", "{edit}.json"),
    log:
        R("logs", "metrics_{method}_{edit}.log"),
    benchmark:
        R("benchmarks", "metrics_{method}_{edit}.tsv")
    params:
        pack=lambda wc: pack_dir(wc.video),
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    conda:
        "../../envs/stitch.yaml"
    script:
        "../../scripts/metrics.py"


rule figures:
    """Comparison strips, alignment trajectories, identity curves, TL-ID/TG-ID bars, strength sweeps."""
    input:
        unpack(figure_inputs(config["methods"])),
    output:
        **figure_outputs(paper=False),
    log:
        R("logs", "figures.log"),
    benchmark:
        R("benchmarks", "figures.tsv")
    params:
        layout=figure_params(config["methods"]),
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    conda:
        "../../envs/stitch.yaml"
    script:
        "../../scripts/figures.py"


rule tables:
    """One row per video x method x edit (metrics.csv), means per method (methods.csv), stage timings."""
    input:
        unpack(table_inputs(config["methods"])),
    output:
        **table_outputs(paper=False),
    log:
        f"{RESULTS}/logs/tables.log",
    benchmark:
        f"{RESULTS}/benchmarks/tables.tsv"
    params:
        benchmarks={v: str(Path(RESULTS, v, "benchmarks")) for v in SAMPLES.index},
        work=table_work(config["methods"]),
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    conda:
        "../../envs/stitch.yaml"
    script:
        "../../scripts/tables.py"


use rule figures as figures_paper with:
    input:
        unpack(figure_inputs(METHODS)),
    output:
        **figure_outputs(paper=True),
    log:
        R("logs", "figures_paper.log"),
    benchmark:
        R("benchmarks", "figures_paper.tsv")
    params:
        layout=figure_params(METHODS),


use rule tables as tables_paper with:
    input:
        unpack(table_inputs(METHODS)),
    output:
        **table_outputs(paper=True),
    params:
        benchmarks={v: str(Path(RESULTS, v, "benchmarks")) for v in SAMPLES.index},
        work=table_work(METHODS),
    log:
        f"{RESULTS}/logs/tables_paper.log",
    benchmark:
        f"{RESULTS}/benchmarks/tables_paper.tsv"


rule paper:
    """Everything the paper's figures and tables need: all four methods, every video in samples.tsv."""
    input:
        [encoded_path(v, m, e) for v in SAMPLES.index for m in METHODS for e in EDITS],
        evaluation_outputs(METHODS, paper=True),
