# Faces: detection + landmarks with tracking, FFHQ alignment with smoothing, crops, segmentation masks.


rule landmarks:
    input:
        video=video_path,
        info=R("frames", "info.json"),  # rule frames checks the video first (one clear line for a bad file)
    output:
        tracks=R("landmarks", "tracks.npz"),
    log:
        R("logs", "landmarks.log"),
    benchmark:
        R("benchmarks", "landmarks.tsv")
    params:
        settings=stage_settings("landmarks"),
    threads: 1
    resources:
        mem_mb=2000,
        runtime=60,
    conda:
        "../../envs/stitch.yaml"
    script:
        "../../scripts/landmarks.py"


rule align:
    input:
        tracks=R("landmarks", "tracks.npz"),
        pack=pack_files,
    output:
        quads=R("align", "quads.npz"),
    log:
        R("logs", "align.log"),
    benchmark:
        R("benchmarks", "align.tsv")
    params:
        faces=lambda wc: faces_setting(wc.video),
        center_sigma=lambda wc: setting(wc.video, "align", "center_sigma"),
        xy_sigma=lambda wc: setting(wc.video, "align", "xy_sigma"),
        max_gap=lambda wc: setting(wc.video, "landmarks", "max_gap"),
        scale=lambda wc: float(pack_meta(wc.video).get("align_scale", 1.0)),
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    conda:
        "../../envs/stitch.yaml"
    script:
        "../../scripts/align.py"


rule crop:
    input:
        video=video_path,
        quads=R("align", "quads.npz"),
    output:
        crops=R("crop", "crops.npz"),
    log:
        R("logs", "crop.log"),
    benchmark:
        R("benchmarks", "crop.tsv")
    params:
        size=lambda wc: int(pack_meta(wc.video)["resolution"]),
    threads: 1
    resources:
        mem_mb=4000,
        runtime=20,
    conda:
        "../../envs/stitch.yaml"
    script:
        "../../scripts/crop.py"


rule masks:
    input:
        crops=R("crop", "crops.npz"),
        tracks=R("landmarks", "tracks.npz"),
        pack=pack_files,
    output:
        masks=R("masks", "masks.npz"),
    log:
        R("logs", "masks.log"),
    benchmark:
        R("benchmarks", "masks.tsv")
    params:
        method=lambda wc: setting(wc.video, "masks", "method"),
        pack=lambda wc: pack_dir(wc.video),
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    conda:
        "../../envs/stitch.yaml"
    script:
        "../../scripts/masks.py"
