# Latent side: e4e inversion (pivots), pivotal tuning of one generator per face track, latent edits.


rule invert:
    """One shard: e4e pivots of its face crops."""
    input:
        crops=R("crop", "{shard}.npz"),
        pack=pack_files,
    output:
        pivots=R("invert", "{shard}.npy"),
    log:
        R("logs", "invert_{shard}.log"),
    benchmark:
        R("benchmarks", "invert_{shard}.tsv")
    wildcard_constraints:
        shard=SHARD,
    params:
        pack=lambda wc: pack_dir(wc.video),
    threads: 1  # torch: 1 thread per job (benchmarks/bench_threads.py, README)
    resources:
        gpu=1,
        mem_mb=6000,
        runtime=30,
    conda:
        "../../envs/stitch.yaml"
    script:
        "../../scripts/invert.py"


rule pti:
    input:
        crops=shard_files(R("crop", "{shard}.npz")),
        pivots=shard_files(R("invert", "{shard}.npy")),
        tracks=R("landmarks", "tracks.npz"),
        pack=pack_files,
    output:
        generators=R("pti", "generators.safetensors"),
        stats=R("pti", "stats.json"),
    log:
        R("logs", "pti.log"),
    benchmark:
        R("benchmarks", "pti.tsv")
    params:
        pack=lambda wc: pack_dir(wc.video),
        settings=stage_settings("pti"),
    threads: 1  # torch: 1 thread per job (benchmarks/bench_threads.py, README)
    resources:
        gpu=1,
        mem_mb=8000,
        runtime=240,
    conda:
        "../../envs/stitch.yaml"
    script:
        "../../scripts/pti.py"


rule calibrate:
    """An edit's targets in probe units (age_years, gender, smile_score; stitch.targets) -> its factors on this video:
    keyframes rendered with the PTI generator, pasted and probed (stitch.calibrate). Only edits with targets."""
    input:
        video=video_path,
        quads=R("align", "quads.npz"),
        masks=shard_files(R("masks", "{shard}.npz")),
        pivots=shard_files(R("invert", "{shard}.npy")),
        generators=R("pti", "generators.safetensors"),
        pack=pack_files,
        **PROBE,
    output:
        calibration=R("calibrate", "{edit}.json"),
    log:
        R("logs", "calibrate_{edit}.log"),
    benchmark:
        R("benchmarks", "calibrate_{edit}.tsv")
    params:
        pack=lambda wc: pack_dir(wc.video),
        raw=lambda wc: EDITS[wc.edit],
        targets=lambda wc: EDIT_TARGETS[wc.edit],
        settings=stage_settings("calibrate"),
        feather=lambda wc: setting(wc.video, "paste", "feather"),
        mode=lambda wc: setting(wc.video, "paste", "mode"),
    threads: 1
    resources:
        gpu=1,
        mem_mb=3000,
        runtime=30,
    conda:
        "../../envs/stitch.yaml"
    script:
        "../../scripts/calibrate.py"


rule edit:
    """Edited latents; an edit with a time range (start/end/ramp) is scaled per frame by its envelope, written to
    edit/{edit}.json (0 = frame left as the source by paste and stitching). An edit with targets applies the
    factors of calibrate/{edit}.json (a sweep: those of its edit x its multiplier)."""
    input:
        unpack(calibration_input),
        pivots=shard_files(R("invert", "{shard}.npy")),
        info=R("frames", "info.json"),
        pack=pack_files,
    output:
        latents=R("edit", "{edit}.npy"),
        envelope=R("edit", "{edit}.json"),
    log:
        R("logs", "edit_{edit}.log"),
    benchmark:
        R("benchmarks", "edit_{edit}.tsv")
    params:
        pack=lambda wc: pack_dir(wc.video),
        factors=lambda wc: EDITS[wc.edit],
        multiplier=lambda wc: SWEEP_MULTIPLIER.get(wc.edit, 1.0),
        time_range=lambda wc: edit_range(wc.video, wc.edit),
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    conda:
        "../../envs/stitch.yaml"
    script:
        "../../scripts/edit.py"
