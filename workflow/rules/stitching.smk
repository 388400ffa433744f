# Edit side: per-frame stitching tuning (rule `stitching`: the package is named `stitch`), the PTI reconstruction
# (rule `recon`; paste and encode take it as the pseudo-edit `_recon` of stit and no_stitch), paste back.


rule stitching:
    """One shard of an edit: per-frame stitching tuning of its frames (a cluster runs an edit's shards at once)."""
    input:
        generators=R("pti", "generators.safetensors"),
        latents=R("edit", "{edit}.npy"),
        envelope=R("edit", "{edit}.json"),
        crops=R("crop", "{shard}.npz"),
        masks=R("masks", "{shard}.npz"),
    output:
        crops=R("stitching", "{edit}", "{shard}.npz"),
    log:
        R("logs", "stitching_{edit}_{shard}.log"),
    benchmark:
        R("benchmarks", "stitching_{edit}_{shard}.tsv")
    wildcard_constraints:
        edit="|".join(EDITS),
        shard=SHARD,
    params:
        settings=stage_settings("stitching"),
        shard_frames=lambda wc: shard_frames(wc.video),
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
    """One shard: the PTI reconstruction (no edit) rendered for the side-by-side video and the metrics."""
    input:
        generators=R("pti", "generators.safetensors"),
        pivots=shard_files(R("invert", "{shard}.npy")),
        crops=R("crop", "{shard}.npz"),
    output:
        crops=R("recon", "{shard}.npz"),
    log:
        R("logs", "recon_{shard}.log"),
    benchmark:
        R("benchmarks", "recon_{shard}.tsv")
    wildcard_constraints:
        shard=SHARD,
    params:
        shard_frames=lambda wc: shard_frames(wc.video),
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
    """One shard of an edit: inverse-warp the method's face crops into the original frames (paste.mode detail
    pastes the edit's change, the crops minus the method's _recon crops, onto the source) and write the frames as
    H.264 segments, of the edited video and of the side-by-side; encode joins a video's segments."""
    input:
        unpack(paste_inputs),
        info=R("frames", "info.json"),
        recon_video=R("encode", "{method}", "_recon.mp4"),
    output:
        segment=temp(R("paste", "{method}", "{edit}", "{shard}.mp4")),
        side_by_side=temp(R("paste", "{method}", "{edit}", "{shard}.side_by_side.mp4")),
    log:
        R("logs", "paste_{method}_{edit}_{shard}.log"),
    benchmark:
        R("benchmarks", "paste_{method}_{edit}_{shard}.tsv")
    wildcard_constraints:
        edit="|".join(EDITS),
        shard=SHARD,
    params:
        feather=lambda wc: setting(wc.video, "paste", "feather"),
        mode=lambda wc: setting(wc.video, "paste", "mode"),
        shard_frames=lambda wc: shard_frames(wc.video),
    threads: 1  # x264 gets the job's threads (stitch.video.encoder_threads); shard jobs run side by side
    resources:
        mem_mb=4000,
        runtime=30,
    conda:
        "../../envs/stitch.yaml"
    script:
        "../../scripts/paste.py"


rule paste_recon:
    """One shard of a method's reconstruction pasted into the original frames, as an H.264 segment."""
    input:
        unpack(recon_paste_inputs),
        info=R("frames", "info.json"),
    output:
        segment=temp(R("paste", "{method}", "_recon", "{shard}.mp4")),
    log:
        R("logs", "paste_{method}__recon_{shard}.log"),
    benchmark:
        R("benchmarks", "paste_{method}__recon_{shard}.tsv")
    wildcard_constraints:
        shard=SHARD,
    params:
        feather=lambda wc: setting(wc.video, "paste", "feather"),
        mode=lambda wc: setting(wc.video, "paste", "mode"),
        shard_frames=lambda wc: shard_frames(wc.video),
    threads: 1  # x264 gets the job's threads (stitch.video.encoder_threads); shard jobs run side by side
    resources:
        mem_mb=4000,
        runtime=30,
    conda:
        "../../envs/stitch.yaml"
    script:
        "../../scripts/paste_recon.py"
