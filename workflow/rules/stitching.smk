# Edit side: per-frame stitching tuning (rule `stitching`: the package is named `stitch`), the PTI reconstruction
# (rule `recon`; paste and encode take it as the pseudo-edit `_recon` of stit and no_stitch), paste back.


rule stitching:
    input:
        generators=R("pti", "generators.safetensors"),
        latents=R("edit", "{edit}.npy"),
        envelope=R("edit", "{edit}.json"),
        crops=R("crop", "crops.npz"),
        masks=R("masks", "masks.npz"),
    output:
        crops=R("stitching", "{edit}.npz"),
    log:
        R("logs", "stitching_{edit}.log"),
    benchmark:
        R("benchmarks", "stitching_{edit}.tsv")
    params:
        settings=stage_settings("stitching"),
    threads: 1  # torch: 1 thread per job (benchmarks/bench_threads.py, README)
    resources:
        gpu=1,
        mem_mb=8000,
        runtime=480,
    conda:
        "../../envs/stitch.yaml"
    script:
        "../../scripts/stitching.py"


rule recon:
    """PTI reconstruction (no edit) rendered for the side-by-side video and the metrics."""
    input:
        generators=R("pti", "generators.safetensors"),
        pivots=R("invert", "pivots.npy"),
        crops=R("crop", "crops.npz"),
    output:
        crops=R("recon", "crops.npz"),
    log:
        R("logs", "recon.log"),
    benchmark:
        R("benchmarks", "recon.tsv")
    threads: 1  # torch: 1 thread per job (benchmarks/bench_threads.py, README)
    resources:
        gpu=1,
        mem_mb=4000,
        runtime=30,
    conda:
        "../../envs/stitch.yaml"
    script:
        "../../scripts/recon.py"


rule paste:
    """Inverse-warp every method's face crops into the original frames (identically for all methods); paste.mode
    detail pastes the edit's change (crops minus the method's _recon crops) onto the source instead."""
    input:
        unpack(paste_inputs),
    output:
        frames=temp(R("paste", "{method}", "{edit}.npy")),
    log:
        R("logs", "paste_{method}_{edit}.log"),
    benchmark:
        R("benchmarks", "paste_{method}_{edit}.tsv")
    params:
        feather=lambda wc: setting(wc.video, "paste", "feather"),
        mode=lambda wc: setting(wc.video, "paste", "mode"),
    threads: 1
    resources:
        mem_mb=6000,
        runtime=30,
    conda:
        "../../envs/stitch.yaml"
    script:
        "../../scripts/paste.py"
