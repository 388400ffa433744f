# Baselines STIT is compared with (e4e, no_stitch, pti_frame): same upstream stages, same paste-back.


rule baseline:
    """One shard of an edit (or of _recon) rendered by e4e or no_stitch."""
    input:
        unpack(baseline_inputs),
    output:
        crops=R("baseline", "{method}", "{edit}", "{shard}.npz"),
    log:
        R("logs", "baseline_{method}_{edit}_{shard}.log"),
    benchmark:
        R("benchmarks", "baseline_{method}_{edit}_{shard}.tsv")
    wildcard_constraints:
        method="e4e|no_stitch",
        shard=SHARD,
    params:
        pack=lambda wc: pack_dir(wc.video),
        shard_frames=lambda wc: shard_frames(wc.video),
    threads: 1  # torch: 1 thread per job (benchmarks/bench_threads.py, README)
    resources:
        gpu=1,
        mem_mb=4000,
        runtime=30,
    conda:
        "../../envs/stitch.yaml"
    script:
        "../../scripts/baseline.py"


rule baseline_pti_frame:
    """One shard: PTI on every frame independently; renders all edits at once (per-frame generators are not kept)."""
    input:
        crops=R("crop", "{shard}.npz"),
        pivots=shard_files(R("invert", "{shard}.npy")),
        latents=expand(R("edit", "{edit}.npy"), edit=list(EDITS), allow_missing=True),
        pack=pack_files,
    output:
        crops=expand(R("baseline", "pti_frame", "{edit}", "{shard}.npz"), edit=["_recon", *EDITS], allow_missing=True),
    log:
        R("logs", "baseline_pti_frame_{shard}.log"),
    benchmark:
        R("benchmarks", "baseline_pti_frame_{shard}.tsv")
    wildcard_constraints:
        shard=SHARD,
    params:
        shard_frames=lambda wc: shard_frames(wc.video),
        pack=lambda wc: pack_dir(wc.video),
        edits=list(EDITS),
        settings=stage_settings("pti"),
    threads: 1  # torch: 1 thread per job (benchmarks/bench_threads.py, README)
    resources:
        gpu=1,
        mem_mb=8000,
        runtime=720,
    conda:
        "../../envs/stitch.yaml"
    script:
        "../../scripts/baseline_pti_frame.py"
