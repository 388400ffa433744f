# Baselines STIT is compared with (e4e, no_stitch, pti_frame): same upstream stages, same paste-back.


rule baseline:
    input:
        unpack(baseline_inputs),
    output:
        crops=R("baseline", "{method}", "{edit}.npz"),
    log:
        R("logs", "baseline_{method}_{edit}.log"),
    benchmark:
        R("benchmarks", "baseline_{method}_{edit}.tsv")
    wildcard_constraints:
        method="e4e|no_stitch",
    params:
        pack=lambda wc: pack_dir(wc.video),
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
    """PTI on every frame independently; renders all edits at once (per-frame generators are not kept)."""
    input:
        crops=R("crop", "crops.npz"),
        pivots=R("invert", "pivots.npy"),
        latents=expand(R("edit", "{edit}.npy"), edit=list(EDITS), allow_missing=True),
        pack=pack_files,
    output:
        crops=expand(R("baseline", "pti_frame", "{edit}.npz"), edit=["_recon", *EDITS], allow_missing=True),
    log:
        R("logs", "baseline_pti_frame.log"),
    benchmark:
        R("benchmarks", "baseline_pti_frame.tsv")
    params:
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
