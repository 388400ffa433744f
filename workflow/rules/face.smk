# Faces: detection + landmarks with tracking, FFHQ alignment with smoothing, crops, segmentation masks.


rule detect:
    """One shard: every face in its frames, with its 68 landmarks (landmarks links them over the video)."""
    input:
        video=video_path,
        info=R("frames", "info.json"),  # rule frames checks the video first (one clear line for a bad file)
    output:
        detections=R("detect", "{shard}.npz"),
    log:
        R("logs", "detect_{shard}.log"),
    benchmark:
        R("benchmarks", "detect_{shard}.tsv")
    wildcard_constraints:
        shard=SHARD,
    params:
        upsample=lambda wc: setting(wc.video, "landmarks", "upsample"),
        detect_long_side=lambda wc: setting(wc.video, "landmarks", "detect_long_side"),
        shard_frames=lambda wc: shard_frames(wc.video),
    threads: 1
    resources:
        mem_mb=1000,
        runtime=30,
    conda:
        "../../envs/stitch.yaml"
    script:
        "../../scripts/detect.py"


rule landmarks:
    """Face tracks over the whole video from the shards' detections."""
    input:
        video=video_path,
        detections=shard_files(R("detect", "{shard}.npz")),
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
        runtime=20,
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
    """One shard: aligned face crops of its frames (the frames decoded after a seek to the shard's start)."""
    input:
        video=video_path,
        quads=R("align", "quads.npz"),
        info=R("frames", "info.json"),
    output:
        crops=R("crop", "{shard}.npz"),
    log:
        R("logs", "crop_{shard}.log"),
    benchmark:
        R("benchmarks", "crop_{shard}.tsv")
    wildcard_constraints:
        shard=SHARD,
    params:
        size=lambda wc: int(pack_meta(wc.video)["resolution"]),
        shard_frames=lambda wc: shard_frames(wc.video),
    threads: 1
    resources:
        mem_mb=2000,
        runtime=20,
    conda:
        "../../envs/stitch.yaml"
    script:
        "../../scripts/crop.py"


rule masks:
    """One shard: the STIT masks of its face crops."""
    input:
        crops=R("crop", "{shard}.npz"),
        tracks=R("landmarks", "tracks.npz"),
        pack=pack_files,
    output:
        masks=R("masks", "{shard}.npz"),
    log:
        R("logs", "masks_{shard}.log"),
    benchmark:
        R("benchmarks", "masks_{shard}.tsv")
    wildcard_constraints:
        shard=SHARD,
    params:
        method=lambda wc: setting(wc.video, "masks", "method"),
        pack=lambda wc: pack_dir(wc.video),
        shard_frames=lambda wc: shard_frames(wc.video),
    threads: 1
    resources:
        mem_mb=2000,
        runtime=30,
    conda:
        "../../envs/stitch.yaml"
    script:
        "../../scripts/masks.py"
