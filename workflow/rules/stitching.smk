# Edit side: per-frame stitching tuning (rule `stitching`: the package is named `stitch`), paste back.
# The PTI reconstruction goes through `paste` as the pseudo-edit `_recon` (rule recon, not stitching).


ruleorder: recon > stitching


rule stitching:
    input:
        generators=R("pti", "generators.safetensors"),
        latents=R("edit", "{edit}.npy"),
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
    threads: 2
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
        crops=R("stitching", "_recon.npz"),
    log:
        R("logs", "recon.log"),
    benchmark:
        R("benchmarks", "recon.tsv")
    threads: 2
    resources:
        gpu=1,
        mem_mb=4000,
        runtime=30,
    conda:
        "../../envs/stitch.yaml"
    script:
        "../../scripts/recon.py"


rule paste:
    """Inverse-warp every method's face crops into the original frames (identically for all methods)."""
    input:
        video=video_path,
        crops=method_crops,
        quads=R("align", "quads.npz"),
        masks=R("masks", "masks.npz"),
    output:
        frames=temp(R("paste", "{method}", "{edit}.npy")),
    log:
        R("logs", "paste_{method}_{edit}.log"),
    benchmark:
        R("benchmarks", "paste_{method}_{edit}.tsv")
    params:
        feather=lambda wc: setting(wc.video, "paste", "feather"),
    threads: 1
    resources:
        mem_mb=6000,
        runtime=30,
    conda:
        "../../envs/stitch.yaml"
    script:
        "../../scripts/paste.py"
